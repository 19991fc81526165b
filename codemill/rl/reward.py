"""Rewards: every completion is judged by the project's one scorer, in the sandbox, concurrently.

- tasks (generate/output/input): the tasks stage's scorer (``codemill.tasks.score``), the
  same code ``codemill eval --benchmark tasks`` runs, which parses the completion per kind;
- problems (stdin/stdout): evaluate's stdio judge (:func:`codemill.evaluate.stdio.judge`)
  run once per test case, so the reward can be the share of cases passed (open-r1's
  ``code_reward``); a chat model's program is the code block of its answer.

:class:`Rewarder` submits each completion to a thread pool (the sandbox's fork server
runs them in parallel; ``--sandbox-url`` sends them to the verifier service instead) and
returns futures, so the trainer computes reference log-probabilities while the code runs.
With ``--sandbox-url`` (``codemill sandbox serve``; key in ``$CODEMILL_SANDBOX_API_KEY``)
each batch is one request per source to the service, one sample per completion; the
service's ``passed_cases`` and ``total`` give the share of cases passed. A service without
those fields gets every test case sent as its own task instead (:func:`remote_batch`).
The reward (``pass``, ``fraction`` or open-r1's ``weighted`` = pass + 0.1 x fraction) plus
``format_weight`` x the format reward is what enters the advantage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from codemill.evaluate import stdio
from codemill.rl.data import RLTask

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL)
FORMAT = re.compile(r"\s*<think>(?:(?!</?think>).)*</think>\s*```[^\n`]*\n(?:(?!```).)*```\s*", re.DOTALL)


@dataclass(slots=True)
class Score:
    passed: bool
    fraction: float
    detail: str
    executions: int = 0
    seconds: float = 0.0


def format_ok(completion: str) -> bool:
    """One ``<think>`` block, then exactly one fenced code block, nothing else (issue 19, stage 1)."""
    return FORMAT.fullmatch(completion) is not None


def code_block(completion: str) -> str:
    """The last fenced code block after the reasoning; the whole text when there is none."""
    answer = completion.rsplit("</think>", 1)[-1]
    blocks = FENCE.findall(answer)
    return blocks[-1] if blocks else answer


def reward_value(score: Score, mode: str, formatted: bool, format_weight: float) -> float:
    base = {
        "pass": float(score.passed),
        "fraction": score.fraction,
        "weighted": float(score.passed) + 0.1 * score.fraction,
    }[mode]
    return base + format_weight * float(formatted)


# ---------------------------------------------------------------------------- the two scorers


def score_problem(sandbox, task: RLTask, completion: str, chat: bool) -> Score:
    """Each stdin/stdout case through evaluate's judge on its own, so every case counts."""
    problem = task.problem
    program_task, text = (
        (dataclasses.replace(problem, prompt=""), code_block(completion)) if chat else (problem, completion)
    )
    passed, first = 0, ""
    for number, case in enumerate(problem.cases, start=1):
        ok, detail = stdio.judge(sandbox, dataclasses.replace(program_task, cases=[case]), text)
        passed += ok
        first = first or ("" if ok else detail.replace("(test 1)", f"(test {number})"))
    total = len(problem.cases)
    return Score(passed == total, passed / total, first or "passed", executions=total)


def score_task(sandbox, task: RLTask, completion: str, timeout: float) -> Score:
    """The tasks stage's scorer on one completion (parsing per kind included)."""
    from codemill.tasks.score import score_one

    result = score_one(task.task, completion, sandbox, timeout)
    runs = 0 if task.kind == "output" or result.detail.startswith("parse error") else 1  # output answers never run
    return Score(result.passed, result.fraction, result.detail, executions=runs)


# ---------------------------------------------------------------------------- the sandbox service


def _task_row(task, tests: list[tuple[str, str]], task_id: str) -> dict:
    return {
        "task_id": task_id,
        "kind": task.kind,
        "entry_point": task.entry_point,
        "prompt": task.prompt,
        "reference": task.reference,
        "tests": json.dumps([{"input": i, "output": o} for i, o in tests]),
        "answer": task.answer,
        "split": task.split,
        "repo": task.repo,
        "path": task.path,
    }


def _problem_row(t: RLTask, cases, case_id: str) -> dict:
    return {
        "question_id": case_id,
        "question_title": t.statement[0],
        "question_content": t.statement[1],
        "public_test_cases": [{"input": i, "output": o, "testtype": "stdin"} for i, o in cases],
    }


def remote_batch(url: str, tasks: list[RLTask], completions: list[str], chat: bool, api_key: str) -> list[Score]:
    """Score a batch on the verifier service: one sample per completion, the share of cases
    from the rows' ``passed_cases``/``total``; :func:`remote_batch_by_case` when the service
    does not report them."""
    from codemill.verify import client

    out: list[Score | None] = [None] * len(tasks)
    for kind in ("tasks", "stdio"):
        mine = [i for i, t in enumerate(tasks) if (t.source == "problems") == (kind == "stdio")]
        if not mine:
            continue
        rows: dict[str, dict] = {}
        for i in mine:
            t = tasks[i]
            rows.setdefault(
                t.task_id,
                _task_row(t.task, list(t.task.tests), t.task_id)
                if kind == "tasks"
                else _problem_row(t, t.problem.cases, t.task_id),
            )
        texts = [code_block(completions[i]) if kind == "stdio" and chat else completions[i] for i in mine]
        samples = [{"task_id": tasks[i].task_id, "completion": text} for i, text in zip(mine, texts)]
        extra = {"tasks": list(rows.values())} if kind == "tasks" else {"problems": list(rows.values())}
        results = client.score(kind, samples, url=url, api_key=api_key, extra={"all_cases": True}, **extra)
        if not all("passed_cases" in r and "total" in r for r in results):
            scores = remote_batch_by_case(url, [tasks[i] for i in mine], [completions[i] for i in mine], chat, api_key)
        else:
            scores = [
                Score(
                    bool(r["passed"]),
                    r["passed_cases"] / max(r["total"], 1),
                    str(r["result"]),
                    executions=_executions(tasks[i], r),
                )
                for i, r in zip(mine, results)
            ]
        for i, score in zip(mine, scores):
            out[i] = score
    return out  # type: ignore[return-value]


def _executions(task: RLTask, row: dict) -> int:
    """Sandboxed runs, counted as the in-process scorers count them."""
    if task.source == "problems":
        return int(row["total"])
    return 0 if task.kind == "output" or str(row["result"]).startswith("parse error") else 1


def remote_batch_by_case(
    url: str, tasks: list[RLTask], completions: list[str], chat: bool, api_key: str
) -> list[Score]:
    """For a service that answers only pass/fail per sample: every test case is sent as a
    task (or problem) of its own and the shares are added up here: the same verdicts, case
    by case, as the in-process scorer."""
    from codemill.verify import client

    owners: dict[str, list[int]] = {"tasks": [], "stdio": []}
    samples: dict[str, list[dict]] = {"tasks": [], "stdio": []}
    rows: dict[str, dict[str, dict]] = {"tasks": {}, "stdio": {}}
    for i, (t, completion) in enumerate(zip(tasks, completions)):
        kind = "stdio" if t.source == "problems" else "tasks"
        cases = t.problem.cases if kind == "stdio" else list(t.task.tests)
        text = code_block(completion) if kind == "stdio" and chat else completion
        for number, (given, expected) in enumerate(cases):
            case_id = f"{t.task_id}#case{number}"
            if case_id not in rows[kind]:
                rows[kind][case_id] = (
                    _task_row(t.task, [(given, expected)], case_id)
                    if kind == "tasks"
                    else _problem_row(t, [(given, expected)], case_id)
                )
            samples[kind].append({"task_id": case_id, "completion": text})
            owners[kind].append(i)
    passed = [[0, 0] for _ in tasks]  # cases passed, cases run
    detail = ["passed"] * len(tasks)
    for kind in ("tasks", "stdio"):
        if not samples[kind]:
            continue
        extra = {"tasks": list(rows[kind].values())} if kind == "tasks" else {"problems": list(rows[kind].values())}
        results = client.score(kind, samples[kind], url=url, api_key=api_key, **extra)
        for owner, result in zip(owners[kind], results):
            passed[owner][0] += bool(result["passed"])
            passed[owner][1] += 1
            if not result["passed"] and detail[owner] == "passed":
                detail[owner] = str(result["result"])
    return [Score(p == n, p / n if n else 0.0, d, executions=n) for (p, n), d in zip(passed, detail)]


# ---------------------------------------------------------------------------- the pool


class Rewarder:
    """Scores completions concurrently; counts executions and their latency."""

    def __init__(self, workers: int = 2, timeout: float = 5.0, chat: bool = False, sandbox_url: str = "", sandbox=None):
        self.workers, self.timeout, self.chat, self.sandbox_url = workers, timeout, chat, sandbox_url
        self._sandbox, self._own = sandbox, sandbox is None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Rewarder:
        if self._sandbox is None:
            self._sandbox = self._open_sandbox()
            self._own = self._sandbox is not None
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rl-reward")
        return self

    def _open_sandbox(self):
        if self.sandbox_url:
            from codemill.verify import client

            client.isolation(self.sandbox_url)  # fails now, naming the URL, when the service is not there
            return None
        from codemill.evaluate.sandbox import Limits, Sandbox

        sandbox = Sandbox(Limits(timeout=self.timeout), require_isolation=os.environ.get("_KFP_RUNTIME") == "true")
        sandbox.start()
        return sandbox

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._own and self._sandbox is not None and hasattr(self._sandbox, "close"):
            self._sandbox.close()

    def _one(self, task: RLTask, completion: str) -> Score:
        start = time.perf_counter()
        if task.source == "problems":
            score = score_problem(self._sandbox, task, completion, self.chat)
        else:
            score = score_task(self._sandbox, task, completion, self.timeout)
        score.seconds = time.perf_counter() - start
        return score

    def submit(self, tasks: list[RLTask], completions: list[str]) -> list[Future]:
        assert self._pool is not None, "use Rewarder as a context manager"
        if self.sandbox_url:  # one request for the whole batch; a future per completion all the same
            return self._submit_remote(tasks, completions)
        return [self._pool.submit(self._one, t, c) for t, c in zip(tasks, completions)]

    def _submit_remote(self, tasks: list[RLTask], completions: list[str]) -> list[Future]:
        from codemill.verify.client import API_KEY_ENV

        items = [Future() for _ in tasks]
        start = time.perf_counter()
        batch = self._pool.submit(
            remote_batch, self.sandbox_url, tasks, completions, self.chat, os.environ.get(API_KEY_ENV, "")
        )

        def resolve(done: Future) -> None:
            if done.exception() is not None:
                for f in items:
                    f.set_exception(done.exception())
                return
            seconds = (time.perf_counter() - start) / max(len(items), 1)
            for f, score in zip(items, done.result()):
                score.seconds = seconds
                f.set_result(score)

        batch.add_done_callback(resolve)
        return items

    def score(self, tasks: list[RLTask], completions: list[str]) -> list[Score]:
        return [f.result() for f in self.submit(tasks, completions)]
