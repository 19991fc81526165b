"""The vLLM backend (GPU image only): vLLM schedules and batches, codemill keeps the API.

vLLM's engine does continuous batching and paged attention, so this backend skips
codemill's batcher and hands each request straight to ``AsyncLLMEngine.generate``. The
prompt goes in as token ids built by :class:`~codemill.serve.prompting.PromptBuilder`,
which is how FIM works here although vLLM's own OpenAI server rejects ``suffix``
(vllm #9976). vLLM reports cumulative text per choice; this module turns it into the
same ``Delta``/``Finished`` events the hf backend sends, so the HTTP layer, metrics
and tests are shared.

``echo`` with ``max_tokens`` 0 (scoring a prompt) asks vLLM for one token, since its
sampler needs at least one, and drops it: the choices finish with ``length`` and no token
(what vLLM's own server does).

``seed`` is passed to vLLM's per-request sampler: vLLM documents it as reproducible for
the same request on the same hardware and engine configuration.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from codemill.serve.batching import Delta, Failed, Finished, Job
from codemill.serve.hf_backend import model_context_length
from codemill.serve.logprobs import TokenLogprob
from codemill.stage import InputError

log = logging.getLogger("codemill.serve")


def _entries(token_ids, logprobs, k: int) -> list[TokenLogprob]:
    """vLLM's per-token ``{token_id: Logprob(logprob, rank, ...)}`` (the token itself plus the top ``k``)."""
    out = []
    for token, options in zip(token_ids, logprobs):
        top = sorted(
            ((i, lp.logprob) for i, lp in options.items() if lp.rank is not None and lp.rank <= k),
            key=lambda item: -item[1],
        )
        out.append(TokenLogprob(token, options[token].logprob, top[:k]))
    return out


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMEngine:
    """The ``vllm`` backend's :class:`~codemill.serve.engine.Engine`: each job is one ``AsyncLLMEngine`` request."""

    def __init__(
        self, model_dir: str, metrics, context_length: int = 0, dtype: str = "auto", gpu_memory_utilization: float = 0.9
    ):
        self.model_dir = model_dir
        self.metrics = metrics
        self.requested_context = context_length
        self.dtype = dtype
        self.gpu_memory_utilization = gpu_memory_utilization
        self.tokenizer = None
        self.engine = None
        self.context_length = 0
        self._tasks: set[asyncio.Task] = set()

    def load(self) -> None:
        if not vllm_available():
            raise InputError("--backend vllm: the vllm package is not installed (use the GPU image, or --backend hf)")
        from transformers import AutoConfig, AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        limit = model_context_length(AutoConfig.from_pretrained(self.model_dir))
        if self.requested_context and limit and self.requested_context > limit:
            raise InputError(f"context_length {self.requested_context} exceeds the model's {limit} positions")
        self.context_length = self.requested_context or limit or 2048
        args = AsyncEngineArgs(
            model=self.model_dir,
            tokenizer=self.model_dir,
            dtype=self.dtype,
            max_model_len=self.context_length,
            gpu_memory_utilization=self.gpu_memory_utilization,
        )
        self.engine = AsyncLLMEngine.from_engine_args(args)

    def submit(self, job: Job) -> None:
        """Start driving the job on the event loop (called from a request handler)."""
        self.metrics.waiting.inc()
        task = asyncio.ensure_future(self._drive(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(self, job: Job) -> None:
        from vllm import SamplingParams

        req = job.request
        params = SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=max(1, req.max_tokens),
            stop=req.stop or None,
            seed=req.seed,
            stop_token_ids=sorted(job.stop_ids) or None,
            logprobs=req.logprobs,
            prompt_logprobs=(req.logprobs or 0) if req.echo else None,
        )
        request_id = uuid.uuid4().hex
        sent: dict[int, tuple[int, int]] = {}  # choice -> (characters, tokens) already forwarded
        finished: set[int] = set()
        running = False
        try:
            async for output in self.engine.generate({"prompt_token_ids": job.prompt_ids}, params, request_id):
                if not running:
                    running = True
                    job.first_token_at = time.perf_counter()
                    self.metrics.waiting.dec()
                    self.metrics.running.inc()
                if job.cancelled:
                    await self.engine.abort(request_id)
                    return
                if req.echo and job.prompt_logprobs is None:
                    job.prompt_logprobs = [None] + _entries(
                        job.prompt_ids[1:], output.prompt_logprobs[1:], req.logprobs or 0
                    )
                if req.max_tokens:
                    for choice in output.outputs:
                        self._forward(job, choice, sent, finished)
            if not req.max_tokens:  # the prompt is the whole answer; the token vLLM made is dropped
                job.emit_all([Finished(i, "length", 0) for i in range(req.n)])
        except Exception as e:  # one failed request, not a dead server
            log.exception("vLLM request %s failed", request_id)
            job.emit(Failed(f"generation failed: {type(e).__name__}: {e}"))
        finally:
            if running:
                self.metrics.running.dec()
            else:
                self.metrics.waiting.dec()

    @staticmethod
    def _forward(job: Job, choice, sent: dict[int, tuple[int, int]], finished: set[int]) -> None:
        """Turn one cumulative vLLM choice into the text (and logprobs) it added and, once, its finish."""
        chars, tokens = sent.get(choice.index, (0, 0))
        k = job.request.logprobs
        entries = [] if k is None else _entries(choice.token_ids[tokens:], (choice.logprobs or [])[tokens:], k)
        if len(choice.text) > chars or entries:
            job.emit(Delta(choice.index, choice.text[chars:], entries))
            sent[choice.index] = (len(choice.text), len(choice.token_ids))
        if choice.finish_reason is not None and choice.index not in finished:
            finished.add(choice.index)
            if choice.finish_reason not in ("stop", "length"):  # "abort": vLLM dropped the request
                job.emit(Failed(f"vLLM ended choice {choice.index}: {choice.finish_reason}"))
                return
            job.emit(Finished(choice.index, choice.finish_reason, len(choice.token_ids)))

    def close(self, timeout: float = 30.0) -> None:
        shutdown = getattr(self.engine, "shutdown", None)
        if callable(shutdown):
            shutdown()
