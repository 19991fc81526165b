"""Graceful shutdown: a stream in flight when the server is told to stop still finishes."""

import json
import threading

import httpx
import pytest

from codemill.serve.config import ServeConfig
from codemill.serve.server import BackgroundServer


def test_stop_drains_in_flight_stream_then_refuses_connections(tiny_model_dir):
    server = BackgroundServer(ServeConfig(max_tokens_cap=200, access_log=False), tiny_model_dir).start()
    first_chunk = threading.Event()
    events: list[str] = []

    def read_stream():
        body = {"prompt": "def long_function():\n", "max_tokens": 200, "temperature": 0.0, "stream": True}
        with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=120) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    events.append(line[len("data: ") :])
                    first_chunk.set()

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert first_chunk.wait(60)
    sent_before_stop = len(events)
    server.stop()  # as on SIGTERM: returns once in-flight requests are done
    reader.join(60)
    assert events[-1] == "[DONE]"
    assert len(events) > sent_before_stop + 1  # the stream went on after the stop began
    finishes = [c["choices"][0]["finish_reason"] for c in map(json.loads, events[:-1])]
    assert finishes[-1] in ("stop", "length") and finishes[:-1] == [None] * (len(finishes) - 1)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/health", timeout=5)
