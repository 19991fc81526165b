"""The service's whole-program kinds (synth): "program" is judged like the sandbox's function
mode, "stdio_outputs" returns each input's stdout without a verdict; "tasks" and (with
``all_cases``) "stdio" rows count the cases passed. Auth, 400/413/429 and metrics as for the
other kinds."""

import json
import threading
import time

import pytest

from codemill.verify import client
from tests.verify.test_verify_server import KEY, call, sandbox, start  # noqa: F401  (sandbox is a fixture)

ADD = "a, b = map(int, sys.stdin.read().split())\nprint(a + b)\n"


@pytest.fixture(scope="module")
def service(sandbox):  # noqa: F811
    server, url = start(sandbox, running=2, queue=4, max_body_bytes=256 << 10)
    yield url
    server.shutdown()


def test_program_passes_only_when_it_runs_to_its_end(service, sandbox):  # noqa: F811
    samples = [
        {"task_id": "p", "completion": "def f(x):\n    return x + 1\n\nassert f(1) == 2\n"},
        {"task_id": "p", "completion": "def f(x):\n    return x\n\nassert f(1) == 2\n"},
        {"task_id": "q", "completion": "import os\nos._exit(0)\nassert False\n"},
        {"task_id": "q", "completion": "while True:\n    pass\n"},
    ]
    rows = client.score("program", samples, url=service, api_key=KEY)
    assert [r["passed"] for r in rows] == [True, False, False, False]
    assert "AssertionError" in rows[1]["result"] and rows[3]["result"] == "timed out"
    assert [(r["task_id"], r["index"]) for r in rows] == [("p", 0), ("p", 1), ("q", 0), ("q", 1)]
    assert rows == client.score("program", samples, sandbox=sandbox, workers=2)


def test_stdio_outputs_returns_each_inputs_stdout_and_no_verdict(service, sandbox):  # noqa: F811
    samples = [
        {"task_id": "add", "completion": "import sys\n" + ADD},
        {"task_id": "add", "completion": "import sys\nprint('x' * 5000)\n"},
        {"task_id": "one", "completion": "raise SystemExit(3)\n"},
    ]
    extra = {"inputs": {"add": ["1 2\n", "5 6\n"], "one": [""]}, "stdout_bytes": 100}
    rows = client.score("stdio_outputs", samples, url=service, api_key=KEY, extra=extra)
    assert [[o["stdout"] for o in r["outputs"]] for r in rows][0] == ["3\n", "11\n"]
    assert all(o["status"] == "completed" and not o["truncated"] for o in rows[0]["outputs"])
    assert all(o["truncated"] and len(o["stdout"]) <= 100 for o in rows[1]["outputs"])
    assert rows[2]["outputs"][0]["status"].startswith("failed") and "passed" not in rows[2]
    assert rows == client.score("stdio_outputs", samples, sandbox=sandbox, workers=2, extra=extra)
    metrics = call(service, "/metrics")[2].decode()
    assert 'codemill_sandbox_verdicts_total{benchmark="stdio_outputs",verdict="no_verdict"} 3.0' in metrics
    assert 'codemill_sandbox_verdicts_total{benchmark="program",verdict="passed"}' in metrics


def test_tasks_and_all_cases_stdio_rows_count_the_cases_passed(service):
    tests = json.dumps([{"input": "1", "output": "2"}, {"input": "5", "output": "6"}, {"input": "0", "output": "1"}])
    task = {
        "task_id": "t1",
        "kind": "generate",
        "entry_point": "f",
        "prompt": 'def f(x):\n    """x + 1"""\n',
        "reference": "def f(x):\n    return x + 1\n",
        "tests": tests,
    }
    samples = [
        {"task_id": "t1", "completion": "```python\ndef f(x):\n    return x + 1\n```"},
        {"task_id": "t1", "completion": "```python\ndef f(x):\n    return 2 if x < 3 else 6\n```"},
        {"task_id": "t1", "completion": "no code"},
    ]
    rows = client.score("tasks", samples, url=service, api_key=KEY, tasks=[task])
    assert [(r["passed_cases"], r["total"]) for r in rows] == [(3, 3), (2, 3), (0, 3)]
    problem = {
        "question_id": "s1",
        "question_content": "add",
        "public_test_cases": [
            {"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
            {"input": "2 2\n", "output": "4\n", "testtype": "stdin"},
        ],
    }
    samples = [{"task_id": "s1", "completion": ADD}, {"task_id": "s1", "completion": "print(3)\n"}]
    plain = client.score("stdio", samples, url=service, api_key=KEY, problems=[problem])
    every = client.score("stdio", samples, url=service, api_key=KEY, problems=[problem], extra={"all_cases": True})
    assert "passed_cases" not in plain[0]
    assert [(r["passed"], r["result"]) for r in every] == [(r["passed"], r["result"]) for r in plain]
    assert [(r["passed_cases"], r["total"]) for r in every] == [(2, 2), (1, 2)]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"benchmark": "stdio_outputs", "samples": [{"task_id": "a", "completion": ""}]}, '"inputs"'),
        (
            {"benchmark": "stdio_outputs", "samples": [{"task_id": "a", "completion": ""}], "inputs": {"b": []}},
            'no "inputs"',
        ),
        ({"benchmark": "stdio_outputs", "samples": [], "inputs": {}, "stdout_bytes": 0}, "stdout_bytes"),
        ({"benchmark": "program", "samples": [{"task_id": "a"}]}, "samples[0]"),
    ],
)
def test_malformed_program_requests_get_400(service, body, message):
    code, _, text = call(service, "/v1/score", body)
    assert code == 400 and message in json.loads(text)["error"]["message"]


@pytest.mark.parametrize("benchmark", ["program", "stdio_outputs"])
def test_auth_and_size_limits_hold_for_the_new_kinds(service, benchmark):
    body = {"benchmark": benchmark, "samples": [{"task_id": "a", "completion": "pass\n"}], "inputs": {"a": [""]}}
    assert call(service, "/v1/score", body, key="wrong")[0] == 401
    big = dict(body, samples=[{"task_id": "a", "completion": "#" * (1 << 20)}])
    code, _, text = call(service, "/v1/score", big)
    assert code == 413 and "at most" in json.loads(text)["error"]["message"]


def test_a_full_queue_turns_programs_away_with_429(sandbox):  # noqa: F811
    server, url = start(sandbox, running=1, queue=0)
    slow = {"benchmark": "program", "samples": [{"task_id": "s", "completion": "import time\ntime.sleep(0.4)\n"}] * 4}
    results = []
    worker = threading.Thread(target=lambda: results.append(call(url, "/v1/score", slow)))
    worker.start()
    try:
        for _ in range(200):
            if "codemill_sandbox_requests_running 1.0" in call(url, "/metrics")[2].decode():
                break
            time.sleep(0.02)
        code, headers, _ = call(url, "/v1/score", dict(slow, samples=slow["samples"][:1]))
        assert code == 429 and int(headers["Retry-After"]) >= 1
    finally:
        worker.join()
        server.shutdown()
    assert results[0][0] == 200 and all(r["passed"] for r in json.loads(results[0][2])["results"])
