"""Score samples on a ``codemill sandbox serve`` service, or in this process when no URL is given.

    score(benchmark, samples, url="", api_key="", tasks=None, problems=None, extra=None) -> list[dict]
    calls(jobs, url="", api_key="", hash_seed="0", timeout=3.0, memory_mb=None, ...) -> list[list[CallResult]]

The rows are those of ``results.jsonl`` (``service.py``), the same either way, so eval,
synth and rl call this one function and pass ``--sandbox-url`` through. ``extra`` holds
the other request fields (``inputs``, ``stdout_bytes``, ``all_cases``: ``programs.py``). Over HTTP a
429 is retried after its ``Retry-After`` (up to ``retries`` times); any other error is
:class:`SandboxServiceError` with the service's message.

``calls`` is :func:`codemill.verify.run_calls` for many ``(source, entry_point, inputs)``
jobs, as one "calls" request (``service.py``): the same CallResults, decoded strictly here
from the wire text the service sends (the tasks stage runs its references this way).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from codemill.stage import InputError

API_KEY_ENV = "CODEMILL_SANDBOX_API_KEY"


class SandboxServiceError(InputError):
    """The sandbox service refused or failed a request (one line: URL, status, message)."""


def with_sandbox_url(options: dict | None, sandbox_url: str) -> dict:
    """A step's options dict with the pipelines' ``sandbox_url`` parameter applied: set when the
    parameter is non-empty, unless the dict names ``sandbox_url`` itself, which wins (even "",
    to keep one step in-process). The KFP components call this (docs/pipelines.md)."""
    options = dict(options or {})
    if sandbox_url and "sandbox_url" not in options:
        options["sandbox_url"] = sandbox_url
    return options


def request_body(
    benchmark: str,
    samples: list[dict],
    tasks: list[dict] | None = None,
    problems: list[dict] | None = None,
    extra: dict | None = None,
) -> dict:
    body: dict = {
        "benchmark": benchmark,
        "samples": [{"task_id": s["task_id"], "completion": s["completion"]} for s in samples],
    }
    if tasks is not None:
        body["tasks"] = tasks
    if problems is not None:
        body["problems"] = problems
    body.update(extra or {})
    return body


def task_row(task) -> dict:
    """A ``codemill.tasks.score.Task`` as the inline task row a "tasks" request carries."""
    return {
        "task_id": task.task_id,
        "kind": task.kind,
        "entry_point": task.entry_point,
        "prompt": task.prompt,
        "reference": task.reference,
        "tests": json.dumps([{"input": i, "output": o} for i, o in task.tests]),
        "answer": task.answer,
        "split": task.split,
        "repo": task.repo,
        "path": task.path,
    }


def score(
    benchmark: str,
    samples: list[dict],
    *,
    url: str = "",
    api_key: str = "",
    tasks: list[dict] | None = None,
    problems: list[dict] | None = None,
    timeout: float = 3.0,
    workers: int = 0,
    sandbox=None,
    http_timeout: float = 1800.0,
    retries: int = 20,
    extra: dict | None = None,
) -> list[dict]:
    """One row per sample, in order. ``timeout``, ``workers`` and ``sandbox`` apply in-process
    only (the service has its own)."""
    body = request_body(benchmark, samples, tasks, problems, extra)
    if not url:
        from codemill.evaluate.config import cpu_budget
        from codemill.verify.calls import default_sandbox
        from codemill.verify.service import BadRequest, score_request

        try:
            return score_request(body, sandbox or default_sandbox(), workers or cpu_budget(), timeout)
        except BadRequest as e:
            raise InputError(str(e)) from None
    return post(url, body, api_key, http_timeout, retries)["results"]


def post(url: str, body: dict, api_key: str, http_timeout: float = 1800.0, retries: int = 20) -> dict:
    endpoint = url.rstrip("/") + "/v1/score"
    data = json.dumps(body).encode("utf-8")
    for attempt in range(retries + 1):
        req = urllib.request.Request(
            endpoint,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=http_timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            message = _message(e)
            if e.code == 429 and attempt < retries:
                time.sleep(min(30.0, float(e.headers.get("Retry-After") or 1)))
                continue
            raise SandboxServiceError(f"{endpoint}: HTTP {e.code}: {message}") from None
        except (urllib.error.URLError, OSError) as e:
            raise SandboxServiceError(f"{endpoint}: cannot reach the sandbox service: {e}") from None
    raise SandboxServiceError(f"{endpoint}: still busy (429) after {retries} retries")


def isolation(url: str, http_timeout: float = 30.0) -> dict:
    """The service's sandbox layers (``GET /health``, no key needed), plus its URL."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=http_timeout) as response:
            return dict(json.loads(response.read()).get("sandbox", {}), service=url)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise SandboxServiceError(f"{url}/health: cannot reach the sandbox service: {e}") from None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return error.reason or "no message"


def calls_body(
    jobs: list[tuple[str, str, list[str]]],
    hash_seed: str = "0",
    timeout: float = 3.0,
    call_timeout: float | None = None,
    memory_mb: int | None = None,
    result_bytes: int | None = None,
) -> dict:
    """The "calls" request for ``(source, entry_point, inputs)`` jobs (``service.py``)."""
    settings = {"call_timeout": call_timeout, "memory_mb": memory_mb, "result_bytes": result_bytes}
    return {
        "benchmark": "calls",
        "samples": [
            {"task_id": str(n), "completion": source, "entry_point": entry_point, "inputs": list(inputs)}
            for n, (source, entry_point, inputs) in enumerate(jobs)
        ],
        "hash_seed": str(hash_seed),
        "timeout": timeout,
        **{k: v for k, v in settings.items() if v is not None},
    }


def calls(
    jobs: list[tuple[str, str, list[str]]],
    *,
    url: str = "",
    api_key: str = "",
    hash_seed: str = "0",
    timeout: float = 3.0,
    call_timeout: float | None = None,
    memory_mb: int | None = None,
    result_bytes: int | None = None,
    workers: int = 0,
    sandbox=None,
    http_timeout: float = 1800.0,
    retries: int = 20,
) -> list[list]:
    """One list of CallResults per job, in order; ``workers`` and ``sandbox`` apply in-process only."""
    body = calls_body(jobs, hash_seed, timeout, call_timeout, memory_mb, result_bytes)
    if not url:
        from codemill.evaluate.config import cpu_budget
        from codemill.verify.calls import default_sandbox
        from codemill.verify.service import BadRequest, score_request

        try:
            rows = score_request(body, sandbox or default_sandbox(str(hash_seed)), workers or cpu_budget(), timeout)
        except BadRequest as e:
            raise InputError(str(e)) from None
    else:
        rows = post(url, body, api_key, http_timeout, retries)["results"]
    if not isinstance(rows, list) or len(rows) != len(jobs):
        got = len(rows) if isinstance(rows, list) else "no"
        raise SandboxServiceError(f"{url}: the service sent {got} rows for {len(jobs)} jobs")
    return [_call_results(url, row, len(inputs)) for row, (_, _, inputs) in zip(rows, jobs)]


def _call_results(url: str, row: object, count: int) -> list:
    from codemill.verify.calls import STATUSES, CallResult
    from codemill.verify.strict import Unserializable, decode

    found = row.get("calls") if isinstance(row, dict) else None
    if not isinstance(found, list) or len(found) != count:
        raise SandboxServiceError(f"{url}: a row has no calls list of {count} results; is the service older?")
    out = []
    for call in found:
        status = call.get("status") if isinstance(call, dict) else None
        if status not in STATUSES or not isinstance(call.get("detail"), str):
            raise SandboxServiceError(f"{url}: a call result is not {{status, value, detail}}: {str(call)[:200]}")
        if status != "ok":
            out.append(CallResult(status, detail=call["detail"]))
            continue
        try:
            out.append(CallResult("ok", decode(call.get("value"), max_bytes=1 << 62), call["detail"]))
        except Unserializable as e:
            raise SandboxServiceError(f"{url}: a returned value is not strict wire text: {e}") from None
    return out
