"""The sandbox service: auth on every route but /health, clear 4xx (413 is read, never a
reset), 429 with Retry-After when the queue is full, verdicts equal to in-process scoring,
concurrent requests, Prometheus metrics."""

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from codemill.evaluate.humaneval import load_problems
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.verify import client
from codemill.verify.server import ServerConfig, serve
from tests.evaluate.humaneval_hacks import completion as hack

KEY = "test-key-123"


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(timeout=3.0, memory_mb=512)) as sb:
        yield sb


def start(sandbox, **kw):
    holder = {}
    server = serve(ServerConfig(KEY, workers=2, **kw), sandbox, "127.0.0.1", 0, ready=lambda s: holder.update(s=s))
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def service(sandbox):
    server, url = start(sandbox, running=2, queue=4, max_body_bytes=256 << 10)
    yield url
    server.shutdown()


def call(url, path, body=None, key=KEY, method=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def humaneval_samples(n=3):
    problems = load_problems()[:n]
    return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems] + [
        {"task_id": p["task_id"], "completion": hack("always_equal")} for p in problems
    ]


def test_health_needs_no_key_and_everything_else_does(service):
    assert call(service, "/health", key="")[0] == 200
    for path, body in (("/metrics", None), ("/v1/score", {"benchmark": "humaneval", "samples": []}), ("/nope", None)):
        for key in ("", "wrong"):
            code, headers, text = call(service, path, body, key=key)
            assert code == 401 and headers["WWW-Authenticate"] == "Bearer", (path, key)
            assert "API key" in json.loads(text)["error"]["message"]
    assert call(service, "/nope")[0] == 404 and call(service, "/v1/score")[0] == 405
    assert call(service, "/v1/score", method="DELETE", key="")[0] == 401
    code, _, text = call(service, "/v1/score", method="PUT", raw=b"{}")
    assert code == 405 and "POST /v1/score" in json.loads(text)["error"]["message"]


def test_verdicts_over_http_equal_in_process_scoring(service, sandbox):
    samples = humaneval_samples()
    remote = client.score("humaneval", samples, url=service, api_key=KEY)
    local = client.score("humaneval", samples, sandbox=sandbox, workers=2)
    assert remote == local
    assert [r["passed"] for r in remote] == [True] * 3 + [False] * 3
    assert set(remote[0]) == {"benchmark", "task_id", "mode", "index", "completion", "passed", "result"}
    assert remote[3]["result"].startswith("failed: unserializable")


def test_stdio_and_tasks_requests(service):
    problems = [json.loads(line) for line in open("codemill/evaluate/data/stdio_problems.jsonl")][:2]
    samples = [
        {"task_id": "cm-stdio-001", "completion": "a, b = map(int, sys.stdin.read().split())\nprint(a + b)\n"},
        {"task_id": "cm-stdio-001", "completion": "print(0)\n"},
    ]
    rows = client.score("stdio", samples, url=service, api_key=KEY, problems=problems)
    assert [(r["passed"], r["index"]) for r in rows] == [(True, 0), (False, 1)]
    task = {
        "task_id": "t1",
        "kind": "generate",
        "entry_point": "f",
        "prompt": 'def f(x):\n    """x + 1"""\n',
        "reference": "def f(x):\n    return x + 1\n",
        "tests": json.dumps([{"input": "1", "output": "2"}, {"input": "5", "output": "6"}]),
    }
    samples = [
        {"task_id": "t1", "completion": "```python\ndef f(x):\n    return x + 1\n```"},
        {"task_id": "t1", "completion": "```python\ndef f(x):\n    return 2\n```"},
    ]
    rows = client.score("tasks", samples, url=service, api_key=KEY, tasks=[task])
    assert [r["passed"] for r in rows] == [True, False] and "case 2" in rows[1]["result"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"benchmark": "mbpp", "samples": []}', "benchmark"),
        (b'{"benchmark": "humaneval", "samples": [{"task_id": 1}]}', "samples[0]"),
        (b'{"benchmark": "humaneval", "samples": [{"task_id": "HumanEval/999", "completion": ""}]}', "HumanEval/999"),
        (b'{"benchmark": "tasks", "samples": [], "tasks": [{"task_id": "x"}]}', "task row"),
        (
            json.dumps(
                {
                    "benchmark": "tasks",
                    "samples": [{"task_id": "t", "completion": "x"}],
                    "tasks": [
                        {
                            "task_id": "t",
                            "kind": "generate",
                            "entry_point": "f",
                            "prompt": "def f(x):\n",
                            "reference": "def f(x):\n    return x\n",
                            "tests": "[]",
                        }
                    ],
                }
            ).encode(),
            "not valid Python",
        ),
    ],
)
def test_malformed_requests_get_400_with_the_reason(service, body, message):
    code, _, text = call(service, "/v1/score", raw=body)
    assert code == 400 and message in json.loads(text)["error"]["message"]


def test_oversized_body_gets_413_not_a_reset(service):
    body = json.dumps({"benchmark": "humaneval", "samples": [{"task_id": "x", "completion": "y" * (2 << 20)}]})
    code, _, text = call(service, "/v1/score", raw=body.encode())  # urllib sends it all, then reads the answer
    assert code == 413 and "at most" in json.loads(text)["error"]["message"]
    host, port = service.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/v1/score", body=body, headers={"Authorization": f"Bearer {KEY}"})
    assert conn.getresponse().status == 413
    with socket.create_connection((host, int(port))) as s:  # chunked: no length to check against
        s.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + KEY.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 411")


def test_full_queue_answers_429_with_retry_after(sandbox):
    server, url = start(sandbox, running=1, queue=0)
    slow = [{"task_id": "HumanEval/0", "completion": "    import time\n    time.sleep(0.4)\n    return True\n"}] * 4
    results = []
    worker = threading.Thread(
        target=lambda: results.append(call(url, "/v1/score", {"benchmark": "humaneval", "samples": slow}))
    )
    worker.start()
    try:
        for _ in range(200):  # until the slow request is being scored
            if "codemill_sandbox_requests_running 1.0" in call(url, "/metrics")[2].decode():
                break
            time.sleep(0.02)
        code, headers, text = call(url, "/v1/score", {"benchmark": "humaneval", "samples": slow[:1]})
        assert code == 429 and int(headers["Retry-After"]) >= 1
        assert "queue is full" in json.loads(text)["error"]["message"]
    finally:
        worker.join()
        server.shutdown()
    assert results[0][0] == 200


def test_concurrent_requests_all_get_their_own_verdicts(service):
    samples = humaneval_samples(2)
    answers = [None] * 6

    def one(i):
        answers[i] = client.score("humaneval", samples[i % 2 :: 2] if i % 3 else samples, url=service, api_key=KEY)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, rows in enumerate(answers):
        sent = samples[i % 2 :: 2] if i % 3 else samples
        assert [r["completion"] for r in rows] == [s["completion"] for s in sent]
        assert [r["passed"] for r in rows] == [s["completion"] != hack("always_equal") for s in sent]
    code, _, text = call(service, "/metrics")
    text = text.decode()
    assert code == 200
    for name in (
        "codemill_sandbox_queue_depth",
        "codemill_sandbox_executions_total",
        'codemill_sandbox_verdicts_total{benchmark="humaneval",verdict="passed"}',
        "codemill_sandbox_request_latency_seconds_bucket",
    ):
        assert name in text, name
