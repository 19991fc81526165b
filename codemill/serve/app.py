"""The HTTP face: an OpenAI-compatible ``/v1/completions`` plus health, readiness and metrics.

Routes: ``POST /v1/completions`` (JSON, or server-sent events with ``stream``),
``GET /v1/models``, ``GET /health`` (the process answers), ``GET /ready`` (the model is
loaded and a warm-up generation succeeded), ``GET /metrics`` (Prometheus text).

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

from fastapi import Request
from fastapi.responses import JSONResponse

from codemill.serve import protocol
from codemill.serve.batching import Delta, GenerationFailed, Job
from codemill.serve.config import ServeConfig
from codemill.serve.metrics import ServerMetrics
from codemill.serve.prompting import NoFimSentinels, PromptBuilder
from codemill.serve.protocol import ApiError, CompletionRequest

log = logging.getLogger("codemill.serve")
OPEN_ROUTES = frozenset({"/health", "/ready"})


def build_engine(config: ServeConfig, model_dir: str, metrics: ServerMetrics):
    if config.backend == "vllm":
        from codemill.serve.vllm_backend import VLLMEngine

        return VLLMEngine(model_dir, metrics, config.context_length, config.dtype, config.gpu_memory_utilization)
    from codemill.serve.batching import Batcher
    from codemill.serve.hf_backend import HFBackend

    backend = HFBackend(model_dir, config.device, config.dtype, config.context_length, config.torch_threads)
    return Batcher(backend, metrics, max_batch=config.max_batch, wait_s=config.batch_wait_ms / 1000.0,
                   batching=config.batching, max_waiting=config.max_waiting, admit_ratio=config.admit_ratio,
                   admit_max_wait_steps=config.admit_max_wait_steps)


class ServerState:
    """What the routes share: the engine, its readiness, the limits and the metrics."""

    def __init__(self, config: ServeConfig, model_dir: str, model_uri: str):
        self.config = config
        self.model_uri = model_uri
        self.metrics = ServerMetrics(config.served_model_name)
        self.engine = build_engine(config, model_dir, self.metrics)
        self.limits = protocol.Limits(config.max_tokens_cap, config.default_max_tokens, config.n_cap)
        self.builder: PromptBuilder | None = None
        self.ready = False
        self.load_error: str | None = None
        self.started = int(time.time())
        self.on_fatal = None  # set by run_server: stop the process when the model cannot load

    async def start(self) -> None:
        """Load the model off the event loop, then prove one generation works."""
        try:
            await asyncio.to_thread(self.engine.load)
            self.builder = PromptBuilder(self.engine.tokenizer)
            warm = Job(self.builder.build("def"), CompletionRequest(prompt="def", max_tokens=1, temperature=0.0),
                       asyncio.get_running_loop())
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

    def record(self, job: Job, reasons: list[str], completion_tokens: int) -> None:
        now = time.perf_counter()
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
        auth = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            return await self.app(scope, receive, send)
        self.metrics.error("invalid_api_key")
        err = ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
        await JSONResponse(err.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than ``limit`` bytes (HTTP 413)."""
    too_large = ApiError(413, f"request body is larger than {limit} bytes", code="body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def prepare_job(state: ServerState, req: CompletionRequest) -> Job:
    """Model-dependent checks (name, readiness, FIM support, context) and the prompt's ids."""
    name = state.config.served_model_name
    if req.model is not None and req.model != name:
        raise ApiError(404, f"the model '{req.model}' does not exist; this server serves '{name}'",
                       param="model", code="model_not_found")
    if not state.ready:
        raise ApiError(503, "the model is not ready yet", code="not_ready", type_="server_error")
    try:
        prompt_ids = state.builder.build(req.prompt, req.suffix)
    except NoFimSentinels as e:
        raise ApiError(400, f"{e}; leave out 'suffix'", param="suffix", code="fim_unsupported") from e
    limit = state.engine.context_length
    wanted = len(prompt_ids) + req.max_tokens
    if wanted > limit:
        param = "prompt" if len(prompt_ids) >= limit else "max_tokens"
        raise ApiError(400, f"this model's maximum context length is {limit} tokens, but {wanted} were requested "
                            f"({len(prompt_ids)} in the prompt, {req.max_tokens} for the completion); "
                            "shorten the prompt or lower max_tokens", param=param, code="context_length_exceeded")
    return Job(prompt_ids, req, asyncio.get_running_loop())


async def collect(state: ServerState, job: Job, cid: str) -> dict:
    texts, reasons, tokens = [""] * job.n, [""] * job.n, 0
    try:
        async for event in job.stream():
            if isinstance(event, Delta):
                texts[event.index] += event.text
            else:
                reasons[event.index], tokens = event.reason, tokens + event.tokens
    except GenerationFailed as e:
        raise ApiError(e.status, str(e), code=e.code, type_="server_error") from e
    finally:
        job.cancelled = job.cancelled or not all(reasons)
    state.record(job, reasons, tokens)
    return protocol.completion_body(cid, state.config.served_model_name, texts, reasons, len(job.prompt_ids), tokens)


async def stream_events(state: ServerState, job: Job, cid: str):
    """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``."""
    name, reasons, tokens, finished = state.config.served_model_name, [], 0, False
    try:
        async for event in job.stream():
            if isinstance(event, Delta):
                yield protocol.sse(protocol.chunk_body(cid, name, event.index, event.text, None))
            else:
                reasons.append(event.reason)
                tokens += event.tokens
                yield protocol.sse(protocol.chunk_body(cid, name, event.index, "", event.reason))
        state.record(job, reasons, tokens)
        if job.request.include_usage:
            yield protocol.sse(protocol.usage_chunk_body(cid, name, len(job.prompt_ids), tokens))
        finished = True
    except GenerationFailed as e:  # headers are sent already: report in-band, as OpenAI does
        state.metrics.error(e.code)
        yield protocol.sse(ApiError(e.status, str(e), code=e.code, type_="server_error").body())
    finally:
        if not finished:
            job.cancelled = True  # client gone or generation failed: free the rows
    yield protocol.sse("[DONE]")
