"""What the routes share: the server's state, auth, and the checks that turn a request into jobs.

Routes (``server.py``): ``POST /v1/completions`` and ``POST /v1/chat/completions`` (JSON, or
server-sent events with ``stream``), ``GET /v1/models``, the tokenizer routes,
``GET /health`` (the process answers), ``GET /ready`` (the model is loaded and a warm-up
generation succeeded), ``GET /metrics`` (Prometheus text). Request bodies are read in
``bodies.py``, answers assembled in ``responses.py``.

The server answers ``/health`` at once and loads the model in the background, so a
Kubernetes startupProbe can tell "still loading" from "dead". With an API key, every
route but ``/health`` and ``/ready`` needs ``Authorization: Bearer KEY``, ``/metrics``
and unknown paths included (vLLM's key covers only ``/v1``). Every client mistake is a
4xx with an OpenAI error body; 5xx only means the server itself failed (or is loading,
overloaded, shutting down).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from fastapi.responses import JSONResponse

from codemill.serve import protocol
from codemill.serve.batching import Failed, Job
from codemill.serve.bodies import discard_body
from codemill.serve.chat import ChatRequest
from codemill.serve.config import ServeConfig
from codemill.serve.engine import Engine
from codemill.serve.metrics import ServerMetrics
from codemill.serve.prompting import ChatTemplateError, NoChatTemplate, NoFimSentinels, PromptBuilder
from codemill.serve.protocol import ApiError, CompletionRequest, GenerationParams

log = logging.getLogger("codemill.serve")
OPEN_ROUTES = frozenset({"/health", "/ready"})


def build_engine(config: ServeConfig, model_dir: str, metrics: ServerMetrics) -> Engine:
    if config.backend == "vllm":
        from codemill.serve.vllm_backend import VLLMEngine

        return VLLMEngine(model_dir, metrics, config.context_length, config.dtype, config.gpu_memory_utilization)
    from codemill.serve.batching import Batcher
    from codemill.serve.hf_backend import HFBackend

    backend = HFBackend(model_dir, config.device, config.dtype, config.context_length, config.torch_threads)
    return Batcher(
        backend,
        metrics,
        max_batch=config.max_batch,
        wait_s=config.batch_wait_ms / 1000.0,
        batching=config.batching,
        max_waiting=config.max_waiting,
        admit_ratio=config.admit_ratio,
        admit_max_wait_steps=config.admit_max_wait_steps,
    )


class ServerState:
    """What the routes share: the engine, its readiness, the limits and the metrics."""

    def __init__(self, config: ServeConfig, model_dir: str, model_uri: str):
        self.config = config
        self.model_uri = model_uri
        self.metrics = ServerMetrics(config.served_model_name)
        self.engine: Engine = build_engine(config, model_dir, self.metrics)
        self.limits = protocol.Limits(
            config.max_tokens_cap, config.default_max_tokens, config.n_cap, config.max_prompts
        )
        self.builder: PromptBuilder | None = None
        self.ready = False
        self.load_error: str | None = None
        self.started = int(time.time())
        self.on_fatal = None  # set by run_server: stop the process when the model cannot load
        self.jobs: set[Job] = set()  # requests being answered, for the end of the grace period
        self.shutting_down = False

    async def start(self) -> None:
        """Load the model off the event loop, then prove one generation works."""
        try:
            await asyncio.to_thread(self.engine.load)
            self.builder = PromptBuilder(self.engine.tokenizer)
            warm = Job(
                self.builder.build("def"),
                CompletionRequest(prompt="def", max_tokens=1, temperature=0.0),
                asyncio.get_running_loop(),
            )
            self.engine.submit(warm)
            async for _ in warm.stream():
                pass
        except Exception as e:
            self.load_error = f"{type(e).__name__}: {e}"
            log.exception("model failed to load or to generate")
            if self.on_fatal is not None:
                self.on_fatal(e)
            return
        self.ready = True
        self.metrics.ready.set(1)
        log.info("ready: serving %s as %r", self.model_uri, self.config.served_model_name)

    def begin_shutdown(self) -> None:
        """SIGTERM: requests in flight get ``graceful_shutdown_s``; then each gets an answer saying so.

        uvicorn's own deadline (a little later) would cancel the handlers instead: a bare
        plain-text 500, streams cut without ``[DONE]``, and a CancelledError traceback each.
        """
        self.shutting_down = True
        asyncio.get_running_loop().call_later(self.config.graceful_shutdown_s, self._grace_over)

    def _grace_over(self) -> None:
        grace = self.config.graceful_shutdown_s
        if self.jobs:
            log.warning("grace period of %gs over: ending %d unfinished request(s) with 503", grace, len(self.jobs))
        for job in list(self.jobs):
            job.cancelled = True  # the model thread drops its rows at the next step
            job.events.put_nowait(
                Failed(
                    f"the server shut down before this request finished (grace period of {grace:g}s over); retry it",
                    503,
                    "shutting_down",
                )
            )

    def record(self, jobs: list[Job], reasons: list[str], completion_tokens: int) -> None:
        now = time.perf_counter()
        for job in jobs:
            if job.first_token_at is not None:
                self.metrics.ttft.observe(job.first_token_at - job.received)
            self.metrics.e2e.observe(now - job.received)
            self.metrics.prompt_tokens.inc(len(job.prompt_ids))
        self.metrics.generation_tokens.inc(completion_tokens)
        for reason in reasons:
            self.metrics.success(reason)


class ApiKeyMiddleware:
    """Bearer-token check in front of every route except the probes."""

    def __init__(self, app, api_key: str, metrics: ServerMetrics):
        self.app, self.key, self.metrics = app, api_key.encode(), metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_ROUTES:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            return await self.app(scope, receive, send)
        self.metrics.error("invalid_api_key")
        if headers.get(b"expect", b"").lower() != b"100-continue":
            await discard_body(receive)  # so the client reads the 401 instead of a reset
        err = ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
        await JSONResponse(err.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)


def check_servable(state: ServerState, req: GenerationParams) -> None:
    """The request names this model (or none), and the model can take it now."""
    name = state.config.served_model_name
    if req.model is not None and req.model != name:
        raise ApiError(
            404,
            f"the model '{req.model}' does not exist; this server serves '{name}'",
            param="model",
            code="model_not_found",
        )
    if not state.ready:
        raise ApiError(503, "the model is not ready yet", code="not_ready", type_="server_error")
    if state.shutting_down:
        raise ApiError(503, "the server is shutting down", code="shutting_down", type_="server_error")


def check_context(state: ServerState, prompt_ids: list[int], max_tokens: int, prompt_param: str = "prompt") -> None:
    limit = state.engine.context_length
    wanted = len(prompt_ids) + max_tokens
    if wanted > limit:
        param = prompt_param if len(prompt_ids) >= limit else "max_tokens"
        raise ApiError(
            400,
            f"this model's maximum context length is {limit} tokens, but {wanted} were requested "
            f"({len(prompt_ids)} in the prompt, {max_tokens} for the completion); "
            "shorten the prompt or lower max_tokens",
            param=param,
            code="context_length_exceeded",
        )


def make_jobs(req: GenerationParams, prompts: list[list[int]], stop_ids: frozenset[int] = frozenset()) -> list[Job]:
    """One job per prompt, sharing one event queue, choices numbered prompt-major."""
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    return [
        Job(ids, req, loop, events=events, first_index=p * req.n, stop_ids=stop_ids) for p, ids in enumerate(prompts)
    ]


def prepare_job(state: ServerState, req: CompletionRequest) -> list[Job]:
    """Model-dependent checks (name, readiness, FIM support, token ids, context) and each prompt's ids."""
    check_servable(state, req)
    vocab = len(state.builder.tokenizer)
    prompts = []
    for p, prompt in enumerate(req.prompts):
        param = "prompt" if len(req.prompts) == 1 else f"prompt[{p}]"
        if isinstance(prompt, list):  # token ids go to the model as they are (no BOS added), as OpenAI's do
            if max(prompt) >= vocab:
                raise ApiError(
                    400,
                    f"'{param}' holds token id {max(prompt)}; this model's vocabulary has {vocab}",
                    param=param,
                    code="invalid_value",
                )
            ids = prompt
        else:
            try:
                ids = state.builder.build(prompt, req.suffix)
            except NoFimSentinels as e:
                raise ApiError(400, f"{e}; leave out 'suffix'", param="suffix", code="fim_unsupported") from e
        check_context(state, ids, req.max_tokens, prompt_param=param)
        prompts.append(ids)
    return make_jobs(req, prompts)


def prepare_chat(state: ServerState, req: ChatRequest) -> list[Job]:
    """Chat's checks: the model has a chat template that accepts the messages, and they fit."""
    check_servable(state, req)
    try:
        prompt_ids = state.builder.chat(req.messages)
    except NoChatTemplate as e:
        raise ApiError(
            400, f"{e}; this model serves /v1/completions only", param="messages", code="chat_template_missing"
        ) from e
    except ChatTemplateError as e:
        raise ApiError(400, str(e), param="messages", code="invalid_messages") from e
    if not req.max_tokens_given:  # room left in the context, up to the cap
        req.max_tokens = max(1, min(req.max_tokens, state.engine.context_length - len(prompt_ids)))
    check_context(state, prompt_ids, req.max_tokens, prompt_param="messages")
    return make_jobs(req, [prompt_ids], stop_ids=state.builder.end_of_turn_ids)
