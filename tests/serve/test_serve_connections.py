"""Connections the server must bound: shutdown past its grace period, and clients that never finish headers.

The shutdown test runs `codemill serve` as a real child process and sends it SIGTERM, as
Kubernetes does: requests still running when the grace period ends get an OpenAI error
(JSON 503, or an SSE error event and ``[DONE]``), the log has no tracebacks, the process exits.
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from codemill.serve.config import ServeConfig
from codemill.serve.server import BackgroundServer
from codemill.serve.smoke import free_port, wait_ready
from tests.serve.serve_helpers import metric_samples, sample


def _plain(url: str, results: list) -> None:
    body = {"prompt": "def long_function():\n", "max_tokens": 400, "temperature": 0}  # greedy: no early EOS draw
    try:
        resp = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
        results.append((resp.status_code, resp.headers.get("content-type", ""), resp.text))
    except httpx.HTTPError as e:
        results.append((None, "", repr(e)))


def _stream(url: str, results: list) -> None:
    body = {"prompt": "import os\n", "max_tokens": 400, "stream": True, "temperature": 0}
    try:
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as resp:
            events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
        results.append((resp.status_code, events))
    except httpx.HTTPError as e:
        results.append((None, [repr(e)]))


def _wait_admitted(url: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            samples = metric_samples(client)
            admitted = (
                sample(samples, "codemill_num_requests_running")
                + sample(samples, "codemill_num_requests_waiting")
                + sample(samples, "codemill_e2e_request_latency_seconds_count")
            )  # finished already
            if admitted >= count:
                return
            time.sleep(0.02)
    raise TimeoutError(f"fewer than {count} requests reached the server")


def test_sigterm_past_the_grace_period_answers_every_request(tiny_model_dir, tmp_path):
    port = free_port()
    log_path = tmp_path / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "codemill.serve.cli",
        "--model",
        tiny_model_dir,
        "--port",
        str(port),
        "--graceful-shutdown-s",
        "1",
        "--max-batch",
        "4",
        "--max-tokens-cap",
        "400",
        "--torch-threads",
        "1",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 120, alive=lambda: proc.poll() is None)
        plain, streams = [], []
        threads = [threading.Thread(target=_stream, args=(url, streams)) for _ in range(8)] + [
            threading.Thread(target=_plain, args=(url, plain)) for _ in range(12)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        _wait_admitted(url, 20)  # a request still connecting when SIGTERM lands is refused, by design
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for t in threads:
            t.join(60)
        exit_code = proc.wait(30)
        exit_s = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_path.read_text()

    assert len(plain) == 12 and len(streams) == 8
    cut_short = 0
    for status, content_type, body in plain:
        assert status in (200, 503), body
        assert content_type == "application/json"
        data = json.loads(body)
        if status == 503:
            cut_short += 1
            assert data["error"]["code"] == "shutting_down" and data["error"]["type"] == "server_error"
        else:
            assert data["choices"][0]["finish_reason"] in ("stop", "length")
    for status, events in streams:
        assert status == 200 and events[-1] == "[DONE]", events[-3:]
        last = json.loads(events[-2])
        if "error" in last:
            cut_short += 1
            assert last["error"]["code"] == "shutting_down"
        else:
            assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert cut_short > 0  # 20 requests x 400 tokens, 4 at a time, cannot all finish in 1.5 s
    assert "Traceback" not in text and "CancelledError" not in text, text[-3000:]
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled
    assert exit_s < 15, f"the server took {exit_s:.1f}s to exit after SIGTERM"


@pytest.fixture(scope="module")
def quick_server(tiny_model_dir):
    config = ServeConfig(header_timeout_s=0.5, body_timeout_s=0.5, access_log=False)
    with BackgroundServer(config, tiny_model_dir) as server:
        yield server


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("sent", [b"", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le"])
def test_a_client_that_never_finishes_its_headers_is_answered_408_and_closed(quick_server, sent):
    with _connect(quick_server) as sock:
        sock.sendall(sent)
        reply = _read_all(sock)  # returns at EOF: the server closed the connection
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_trickled_headers_do_not_reset_the_deadline(quick_server):
    with _connect(quick_server) as sock:
        started = time.monotonic()
        try:
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # closed by the server while we were still trickling
        reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 4  # 100+ bytes at 20 per second would take over 6 s


def test_keep_alive_connection_gets_a_fresh_deadline_per_request(quick_server):
    with httpx.Client(base_url=quick_server.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(0.3)  # under the deadline between requests: the connection is reused


def test_a_body_that_never_arrives_is_a_408(quick_server):
    with _connect(quick_server) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"prompt": '
        )
        reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in reply


def test_many_stalled_clients_are_all_let_go_and_the_server_still_answers(quick_server):
    stalled = [_connect(quick_server) for _ in range(60)]
    try:
        for i, sock in enumerate(stalled):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"")
        replies = [_read_all(sock) for sock in stalled]  # each returns at the server's close
    finally:
        for sock in stalled:
            sock.close()
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies)
    assert httpx.get(quick_server.url + "/health", timeout=10).status_code == 200
