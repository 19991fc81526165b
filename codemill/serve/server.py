"""Building and running the server: routes, the uvicorn process, and an in-thread server.

``run_server(config)`` is what ``codemill serve`` runs: resolve the model reference
(download from S3 or the registry), then serve with uvicorn until SIGTERM/SIGINT.
Shutdown is graceful: uvicorn stops accepting connections, lets in-flight requests
(streams included) finish for up to ``graceful_shutdown_s``; what still runs then is
answered with 503 ``shutting_down`` (an SSE error event and ``[DONE]`` for streams), and
only then the lifespan hook stops the model thread (:mod:`codemill.serve.connections`).

``BackgroundServer`` runs the same app on a free localhost port in a thread: the tests
and the load benchmark use it to talk real HTTP to a real server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from codemill.serve import chat, protocol, tokenizer_api
from codemill.serve.app import ApiKeyMiddleware, ServerState, prepare_chat, prepare_job
from codemill.serve.bodies import read_body
from codemill.serve.config import ServeConfig
from codemill.serve.protocol import ApiError
from codemill.serve.responses import collect, stream_events, submit

log = logging.getLogger("codemill.serve")


def create_app(config: ServeConfig, model_dir: str, model_uri: str = "") -> FastAPI:
    """The ASGI app serving the model in ``model_dir`` (a local Hugging Face directory)."""
    config.check()
    state = ServerState(config, model_dir, model_uri or model_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loader = asyncio.create_task(state.start())
        yield
        # uvicorn has drained in-flight requests by now; stop the model thread.
        loader.cancel()
        await asyncio.to_thread(state.engine.close, config.graceful_shutdown_s)

    app = FastAPI(title="codemill", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.codemill = state
    api_key = config.resolved_api_key()
    if api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key, metrics=state.metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        state.metrics.error(e.code)
        # After a body that was not read to its end, the connection cannot carry another request.
        headers = {"Connection": "close"} if e.status in (408, 413) else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        state.metrics.error(code)
        err = ApiError(e.status_code, f"{request.method} {request.url.path}: {e.detail}", code=code)
        return JSONResponse(err.body(), status_code=e.status_code)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        if state.ready:
            return {"status": "ready", "model": config.served_model_name}
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, status_code=503)

    @app.get("/metrics")
    async def metrics():
        return Response(state.metrics.exposition(), media_type=state.metrics.content_type)

    @app.get("/v1/models")
    async def models():
        card = {
            "id": config.served_model_name,
            "object": "model",
            "created": state.started,
            "owned_by": "codemill",
            "root": state.model_uri,
            "max_model_len": state.engine.context_length or None,
        }
        return {"object": "list", "data": [card]}

    async def generate(jobs, fmt, stream: bool):
        submit(state, jobs)
        cid = fmt.new_id()
        if stream:
            return StreamingResponse(
                stream_events(state, jobs, cid, fmt),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return JSONResponse(await collect(state, jobs, cid, fmt))

    def tokenizer():
        if not state.ready:
            raise ApiError(503, "the model is not ready yet", code="not_ready", type_="server_error")
        return state.builder.tokenizer

    @app.get("/tokenizer_info")
    async def get_tokenizer_info():
        return tokenizer_api.tokenizer_info(tokenizer(), state.engine.context_length)

    @app.post("/tokenize")
    async def post_tokenize(request: Request):
        raw = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        return tokenizer_api.tokenize(raw, tokenizer(), state.engine.context_length)

    @app.post("/detokenize")
    async def post_detokenize(request: Request):
        raw = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        return tokenizer_api.detokenize(raw, tokenizer())

    @app.post("/v1/completions")
    async def completions(request: Request):
        raw = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        req = protocol.parse_completion_request(raw, state.limits)
        return await generate(prepare_job(state, req), protocol.CompletionFormat(), req.stream)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        raw = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        req = chat.parse_chat_request(raw, state.limits)
        return await generate(prepare_chat(state, req), chat.ChatFormat(), req.stream)

    return app


def run_server(config: ServeConfig) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status (1 when the model failed to load)."""
    from codemill.serve.connections import build_server
    from codemill.serve.model_source import fetch_model
    from codemill.stage import log_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config.check()
    log_config("serve", config.redacted())
    uri = config.resolved_model()
    with tempfile.TemporaryDirectory(prefix="codemill-model-") as scratch:  # downloads live as long as the server
        model_dir = fetch_model(uri, config.cache_dir or scratch, config.tracking_uri)
        app = create_app(config, model_dir, model_uri=uri)
        server = build_server(app, config)
        app.state.codemill.on_fatal = lambda exc: setattr(server, "should_exit", True)
        server.run()
    return 1 if app.state.codemill.load_error else 0


class BackgroundServer:
    """The app on a free 127.0.0.1 port in a daemon thread; ``with`` starts it and waits until ready."""

    def __init__(self, config: ServeConfig, model_dir: str, ready_timeout: float = 120.0):
        from codemill.serve.connections import build_server

        self.app = create_app(config, model_dir)
        self.state: ServerState = self.app.state.codemill
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.server = build_server(self.app, config, log_level="warning", access_log=False)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self.ready_timeout = ready_timeout

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self.state.ready:
            if self.state.load_error or not self._thread.is_alive():
                raise RuntimeError(f"server failed to start: {self.state.load_error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready after {self.ready_timeout}s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop (as on SIGTERM): in-flight requests finish first."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
