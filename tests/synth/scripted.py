"""A scripted OpenAI-compatible teacher on 127.0.0.1 for the synth tests.

``ScriptedTeacher(respond)`` serves ``POST /v1/chat/completions``; ``respond(content, seed,
attempt)`` gets the user turn, the request's ``seed`` and how many times this exact body
was sent before, and returns the answer text, or a :class:`Reply` (a status with headers,
a delay, a reasoning field). ``posts`` counts every request the server received.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    reasoning: str = ""
    finish_reason: str = "stop"


class ScriptedTeacher:
    def __init__(self, respond, api_key: str = ""):
        self.respond, self.api_key = respond, api_key
        self.posts = 0
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ScriptedTeacher:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, body: dict, authorized: bool) -> Reply:
        if not authorized:
            return Reply(status=401, content='{"error": "invalid api key"}')
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self.posts += 1
            attempt = self.attempts.get(key, 0)
            self.attempts[key] = attempt + 1
        out = self.respond(body["messages"][-1]["content"], body.get("seed", 0), attempt)
        return out if isinstance(out, Reply) else Reply(content=out)

    def _handler(self):
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                authorized = not teacher.api_key or self.headers.get("authorization") == f"Bearer {teacher.api_key}"
                reply = teacher._reply(body, authorized)
                time.sleep(reply.delay)
                if reply.status == 200:
                    message = {"role": "assistant", "content": reply.content}
                    if reply.reasoning:
                        message["reasoning_content"] = reply.reasoning
                    payload = {
                        "id": "x",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                        "usage": {
                            "prompt_tokens": len(body["messages"][-1]["content"].split()),
                            "completion_tokens": len(reply.content.split()),
                        },
                    }
                    data = json.dumps(payload).encode()
                else:
                    data = json.dumps({"error": reply.content or "scripted error"}).encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler


def answer(problem: str, solution: str, tests: str | None) -> str:
    """An oss-instruct answer in the asked-for layout."""
    text = f"[Problem]\n{problem}\n\n[Solution]\n```python\n{solution}```\n"
    return text + (f"\n[Tests]\n```python\n{tests}```\n" if tests is not None else "")
