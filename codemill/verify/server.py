"""``codemill sandbox serve``: the verifier as an HTTP service (standard library server).

Routes: ``GET /health`` (no auth), ``POST /v1/score`` (``service.py``, every request kind),
``GET /metrics`` (Prometheus text). Every route but ``/health`` needs ``Authorization: Bearer <key>``.
Errors are JSON, ``{"error": {"message", "type", "code"}}``: 400 malformed request, 401
bad or missing key, 404, 405, 411 no Content-Length, 413 body over ``max_body_bytes``
(the body is read and discarded up to ``DISCARD_BYTES`` first, so the client gets the
answer rather than a reset connection), 429 with ``Retry-After`` when ``running`` requests
are busy and ``queue`` more are waiting, 503 while the sandbox is not started.
A connection that sends nothing for ``idle_timeout`` seconds (headers included) is closed.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from codemill.evaluate.sandbox import Sandbox
from codemill.verify.service import BadRequest, SeedSandboxes, score_request

DISCARD_BYTES = 64 << 20


@dataclass(frozen=True)
class ServerConfig:
    api_key: str
    workers: int = 2  # sandboxed executions at a time, per running request
    running: int = 1  # requests scored at a time
    queue: int = 8  # requests waiting beyond those; more get 429
    max_body_bytes: int = 16 << 20
    timeout: float = 3.0  # per sample (HumanEval run, stdio test case, task)
    idle_timeout: float = 30.0


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("codemill_sandbox_queue_depth", "requests waiting to be scored", registry=r)
        self.running = Gauge("codemill_sandbox_requests_running", "requests being scored", registry=r)
        self.executions = Counter("codemill_sandbox_executions", "samples executed (rate() = executions/s)", registry=r)
        self.verdicts = Counter(
            "codemill_sandbox_verdicts", "verdicts by benchmark and outcome", ["benchmark", "verdict"], registry=r
        )
        self.calls = Counter(
            "codemill_sandbox_calls",
            'calls of "calls" requests by status (ok, raises, timeout, ...)',
            ["status"],
            registry=r,
        )
        self.requests = Counter(
            "codemill_sandbox_requests", "HTTP requests by route and status code", ["route", "code"], registry=r
        )
        self.latency = Histogram(
            "codemill_sandbox_request_latency_seconds",
            "POST /v1/score latency",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )


class Admission:
    """At most ``running`` requests scored and ``queue`` waiting; others are turned away."""

    def __init__(self, running: int, queue: int, metrics: Metrics):
        self.slots = threading.Semaphore(running)
        self.limit, self.admitted, self.lock, self.metrics = running + queue, 0, threading.Lock(), metrics
        self.running = running
        self.seconds = 1.0  # recent request latency, for Retry-After

    def enter(self) -> bool:
        with self.lock:
            if self.admitted >= self.limit:
                return False
            self.admitted += 1
            self.metrics.queue_depth.set(max(0, self.admitted - self.running))
        self.slots.acquire()
        self.metrics.running.inc()
        return True

    def leave(self, seconds: float) -> None:
        self.slots.release()
        self.metrics.running.dec()
        with self.lock:
            self.admitted -= 1
            self.seconds = 0.8 * self.seconds + 0.2 * seconds
            self.metrics.queue_depth.set(max(0, self.admitted - self.running))

    def retry_after(self) -> int:
        return max(1, round(self.seconds * (self.limit / self.running)))


def make_handler(
    config: ServerConfig, sandbox: Sandbox, metrics: Metrics, admission: Admission, seeds: SeedSandboxes | None = None
):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = config.idle_timeout  # socket timeout: bounds header and body reads

        def log_message(self, fmt, *args):  # one access line per request, to stderr
            print(f"[sandbox] {self.address_string()} {fmt % args}", file=sys.stderr, flush=True)

        def _send(
            self,
            code: int,
            body: dict | bytes,
            content_type: str = "application/json",
            headers: dict | None = None,
            close: bool = False,
        ) -> None:
            data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            metrics.requests.labels(self.path.split("?")[0][:40], str(code)).inc()

        def _error(self, code: int, message: str, kind: str, **kw) -> None:
            self._send(code, {"error": {"message": message, "type": kind, "code": code}}, **kw)

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            ok = given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), config.api_key.encode())
            if not ok:
                self._discard_body()
                self._error(
                    401,
                    "missing or wrong API key (Authorization: Bearer <key>)",
                    "authentication_error",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return ok

        def _discard_body(self) -> None:
            length = self.headers.get("Content-Length")
            left = int(length) if length and length.isdigit() else 0
            if left > DISCARD_BYTES:
                self.close_connection = True
                return
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/health":
                return self._send(200, {"status": "ok", "sandbox": dict(sandbox.isolation, python=sandbox.python)})
            if not self._authorized():
                return
            if path == "/metrics":
                return self._send(200, generate_latest(metrics.registry), "text/plain; version=0.0.4")
            if path == "/v1/score":
                return self._error(405, "use POST /v1/score", "invalid_request_error")
            self._error(404, f"no route {path}", "not_found")

        def do_POST(self):
            path = self.path.split("?")[0]
            if not self._authorized():
                return
            if path != "/v1/score":
                self._discard_body()
                return self._error(404, f"no route {path}", "not_found")
            body = self._read_body()
            if body is not None:
                self._score(body)

        def _other_method(self):
            if self._authorized():
                self._discard_body()
                self._error(405, f"{self.command} is not served; use POST /v1/score", "invalid_request_error")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other_method

        def _read_body(self):
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding") or not (length and length.isdigit()):
                self._error(411, "send the body with a Content-Length", "invalid_request_error", close=True)
                return None
            if int(length) > config.max_body_bytes:
                self._discard_body()
                self._error(
                    413,
                    f"the body is {int(length)} bytes; at most {config.max_body_bytes}",
                    "invalid_request_error",
                    close=True,
                )
                return None
            data = self.rfile.read(int(length))
            try:
                return json.loads(data)
            except (ValueError, UnicodeDecodeError) as e:
                self._error(400, f"the body is not JSON: {e}", "invalid_request_error")
                return None

        def _score(self, body) -> None:
            if not admission.enter():
                return self._error(
                    429,
                    "the sandbox queue is full; retry later",
                    "rate_limit_error",
                    headers={"Retry-After": str(admission.retry_after())},
                )
            start = time.monotonic()
            try:
                rows = score_request(body, sandbox, config.workers, config.timeout, seeds)
            except BadRequest as e:
                return self._error(400, str(e), "invalid_request_error")
            except Exception as e:  # a sandbox failure is the server's, said in one line  # noqa: BLE001
                print(f"[sandbox] scoring failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                return self._error(500, f"scoring failed: {type(e).__name__}: {e}", "server_error")
            finally:
                admission.leave(time.monotonic() - start)
            metrics.latency.observe(time.monotonic() - start)
            metrics.executions.inc(len(rows))
            for row in rows:
                outcome = (
                    "no_verdict"
                    if "passed" not in row
                    else "passed"
                    if row["passed"]
                    else "timed_out"
                    if row["result"].startswith("timed out")
                    else "failed"
                )
                metrics.verdicts.labels(row["benchmark"], outcome).inc()
                for call in row.get("calls", ()):
                    metrics.calls.labels(call["status"]).inc()
            self._send(200, {"results": rows})

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seeds: SeedSandboxes | None = None

    def shutdown(self) -> None:  # the sandboxes of other hash seeds end with the server
        super().shutdown()
        if self.seeds is not None:
            self.seeds.close()

    def handle_error(self, request, client_address) -> None:  # a client gone mid-request: one line, no traceback
        print(f"[sandbox] {client_address[0]}: connection error: {sys.exc_info()[1]!r}", file=sys.stderr, flush=True)


def serve(config: ServerConfig, sandbox: Sandbox, host: str, port: int, ready=None) -> ThreadingHTTPServer:
    """Start serving (in this thread unless ``ready`` is given: then in a daemon thread, and
    ``ready`` is called with the server, whose ``server_address`` holds the bound port)."""
    metrics = Metrics()
    seeds = SeedSandboxes(sandbox)
    handler = make_handler(config, sandbox, metrics, Admission(config.running, config.queue, metrics), seeds)
    server = _Server((host, port), handler)
    server.seeds = seeds
    if ready is None:
        try:
            server.serve_forever()
        finally:
            seeds.close()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ready(server)
    return server
