"""``--sandbox-url``: synth's executions on the sandbox service (``codemill sandbox serve``).

:class:`Remote` stands where the in-process ``Sandbox`` does (``steps.py``); the checks
that see one send their runs in batches of ``BATCH`` instead of one at a time:

- oss-instruct's solution + tests as ``"program"`` requests (judged like the sandbox's
  function mode);
- distill's task answers as ``"tasks"`` requests and its stdio answers as ``"stdio"``
  requests (the same scorers, on the service);
- mutual verification's runs as ``"stdio_outputs"`` requests (each input's stdout).

The service's own limits apply (``--timeout`` of ``codemill sandbox serve``), not
``--exec-timeout-s``; verdicts and quarantine reasons are otherwise those of the
in-process checks (a traceback's line numbers in a stdio detail can differ: the service
prefixes evaluate's prompt comments).
"""

from __future__ import annotations

import os

from codemill.evaluate.sandbox import Execution
from codemill.stage import InputError
from codemill.verify import client

BATCH = 128


class Remote:
    """The sandbox service at ``url``, key in ``$api_key_env``; a context manager like Sandbox."""

    def __init__(self, url: str, api_key_env: str):
        self.url = url
        self.api_key = os.environ.get(api_key_env, "")
        if not self.api_key:
            raise InputError(f"synth: --sandbox-url {url}: ${api_key_env} holds no API key")
        self.isolation: dict = {}

    def __enter__(self) -> Remote:
        self.isolation = client.isolation(self.url)  # fails now, naming the URL, when the service is not there
        return self

    def __exit__(self, *exc) -> None:
        return None

    def score(self, benchmark: str, samples: list[dict], **kw) -> list[dict]:
        rows: list[dict] = []
        for start in range(0, len(samples), BATCH):
            rows += client.score(benchmark, samples[start : start + BATCH], url=self.url, api_key=self.api_key, **kw)
        return rows

    def programs(self, sources: list[str]) -> list[Execution]:
        """Whole programs, each passing when it runs to its end (the sandbox's function mode)."""
        rows = self.score("program", [{"task_id": str(n), "completion": s} for n, s in enumerate(sources)])
        return [Execution(bool(r["passed"]), str(r["result"]), timed_out=r["result"] == "timed out") for r in rows]

    def outputs(
        self, programs: list[tuple[str, str]], inputs: dict[str, list[str]], stdout_bytes: int
    ) -> list[list[dict]]:
        """Per ``(task_id, program)``: ``{"status", "stdout", "truncated"}`` per input of the task."""
        samples = [{"task_id": task_id, "completion": program} for task_id, program in programs]
        rows = self.score("stdio_outputs", samples, extra={"inputs": inputs, "stdout_bytes": stdout_bytes})
        return [r["outputs"] for r in rows]
