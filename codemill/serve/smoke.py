"""Smoke requests against a freshly rolled-out server, and a local server process to run them on.

The smoke set covers what the API promises: a plain completion, a fill-in-the-middle
completion with ``suffix``, and a streamed completion that must end with a
``finish_reason`` and ``data: [DONE]``. Each records its status, latency and finish reason;
the smoke passes when all three answer 200 with a finish reason.

``LocalServer`` runs ``codemill serve`` as a child process on a free port (what
``kfp.local`` rollouts use): the same command a person would type, so the smoke also
proves the command in ``summary.json`` works.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

SMOKE_REQUESTS = [
    ("completion", {"prompt": "def fibonacci(n):\n", "temperature": 0.0}),
    ("fim", {"prompt": "def add(a, b):\n    ", "suffix": "\n    return result\n", "temperature": 0.0}),
    ("stream", {"prompt": "import os\n\n\ndef main():\n", "temperature": 0.0, "stream": True}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float, alive=lambda: True) -> float:
    """Poll ``/ready`` until it answers 200; returns the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if not alive():
            raise RuntimeError(f"the server at {url} exited before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url}/ready did not answer 200 within {timeout:.0f}s")


def _one(client: httpx.Client, name: str, body: dict) -> dict:
    start = time.perf_counter()
    result = {"name": name, "request": body, "status": None, "latency_s": None, "finish_reason": None, "text": ""}
    try:
        if body.get("stream"):
            with client.stream("POST", "/v1/completions", json=body) as resp:
                result["status"] = resp.status_code
                lines = [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]
            chunks = [json.loads(x) for x in lines if x != "[DONE]"]
            result["done"] = bool(lines) and lines[-1] == "[DONE]"
            choices = [c for chunk in chunks for c in chunk.get("choices", [])]
            result["text"] = "".join(c["text"] for c in choices)
            result["finish_reason"] = next((c["finish_reason"] for c in choices if c["finish_reason"]), None)
        else:
            resp = client.post("/v1/completions", json=body)
            result["status"] = resp.status_code
            data = resp.json()
            if resp.status_code == 200:
                result["text"] = data["choices"][0]["text"]
                result["finish_reason"] = data["choices"][0]["finish_reason"]
                result["usage"] = data["usage"]
            else:
                result["error"] = data.get("error")
    except (httpx.HTTPError, ValueError, KeyError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    result["latency_s"] = round(time.perf_counter() - start, 4)
    result["passed"] = (
        result["status"] == 200 and result["finish_reason"] in ("stop", "length") and result.get("done", True)
    )
    return result


def smoke(url: str, api_key: str = "", max_tokens: int = 16, timeout: float = 120.0) -> dict:
    """Send the smoke set to a ready server; ``passed`` when every request succeeded."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
        results = [_one(client, name, {**body, "max_tokens": max_tokens}) for name, body in SMOKE_REQUESTS]
    latencies = [r["latency_s"] for r in results]
    return {
        "passed": all(r["passed"] for r in results),
        "url": url,
        "requests": results,
        "max_latency_s": max(latencies),
        "total_latency_s": round(sum(latencies), 4),
    }


class LocalServer:
    """``codemill serve`` as a child process on a free localhost port; stopped with SIGTERM."""

    def __init__(self, model: str, log_path: str, env: dict[str, str] | None = None, extra_args: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable,
            "-m",
            "codemill.serve.cli",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            *extra_args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LocalServer:
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, return the exit status: -15 is a clean stop (uvicorn drains the
        requests in flight, then re-raises the signal it caught)."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log_tail(self, chars: int = 2000) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""
