"""``--mode distill``: K teacher answers per task, kept only when they pass (rejection sampling).

Sources (any together):

- ``--tasks DIR``: the tasks stage's ``train`` tasks of the chosen ``kinds``, judged by the
  tasks stage's one scorer (:func:`codemill.tasks.score.score_one`) on the answer's last
  ```python block;
- ``--problems FILE``: stdin/stdout problems (LiveCodeBench / rStar-Coder JSONL) read by
  evaluate's loader (:func:`codemill.evaluate.stdio.load_tasks`) and judged by its judge;
- with ``--mutual-verification K``: rows of that file that have test ``inputs`` but no
  outputs (rStar-Coder's unlabelled inputs) go to :mod:`codemill.synth.mutual`.

After the verdict: tasks whose pass rate is outside ``pass_rate_range`` have their passing
answers quarantined (``pass_rate``); then ``contaminated`` (prompt + solution against the
benchmarks) and ``duplicate`` (the same answer text twice for one task).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

from codemill.evaluate import stdio
from codemill.evaluate.data import Task as Problem
from codemill.evaluate.sandbox import run_parallel
from codemill.stage import InputError
from codemill.synth import answers, mutual, prompts
from codemill.synth.filters import Contamination, normalized_key
from codemill.synth.output import Outcome
from codemill.synth.service import Remote
from codemill.synth.teacher import Request, Teacher
from codemill.verify import client


def _tasks(config, url: str) -> tuple[list, dict]:
    from codemill.tasks import score

    found = score.load_tasks(url)
    usable = sorted((t for t in found if t.kind in config.kinds and t.split == "train"), key=lambda t: t.task_id)
    chosen = usable[: config.max_tasks] if config.max_tasks else usable
    return chosen, {
        "file": url,
        "rows": len(found),
        "heldout_or_other_kinds": len(found) - len(usable),
        "used": len(chosen),
    }


def _problems(config, url: str) -> tuple[list[Problem], list[mutual.Unlabelled], dict]:
    unlabelled = mutual.read_unlabelled(url) if config.mutual_verification else []
    try:
        problems, bad = stdio.load_tasks(url)
    except InputError:
        if not unlabelled:
            raise
        problems, bad = [], []
    if config.max_tasks:
        problems, unlabelled = problems[: config.max_tasks], unlabelled[: config.max_tasks]
    return (
        problems,
        unlabelled,
        {
            "file": url,
            "labelled": len(problems),
            "unlabelled": len(unlabelled),
            "rows_set_aside": max(0, len(bad) - len(unlabelled)),
        },
    )


def _asked(task_id: str, source: str, kind: str, prompt: str, count: int, tests: str, origin: str) -> list[Outcome]:
    return [
        Outcome(task_id=task_id, source=source, kind=kind, sample=k, prompt=prompt, tests=tests, origin=origin)
        for k in range(count)
    ]


def run(config, inputs: dict, teacher: Teacher, sandbox, contamination: Contamination) -> tuple[list[Outcome], dict]:
    outcomes: list[Outcome] = []
    by_task: dict[str, object] = {}
    stats: dict = {}
    k = config.samples_per_task
    if inputs.get("tasks"):
        tasks, stats["tasks"] = _tasks(config, inputs["tasks"])
        for t in tasks:
            by_task[t.task_id] = t
            outcomes += _asked(
                t.task_id,
                "distill:tasks",
                t.kind,
                prompts.task(t.kind, t.prompt),
                k,
                json.dumps([{"input": i, "output": o} for i, o in t.tests]),
                f"{t.repo}/{t.path}",
            )
    unlabelled: list[mutual.Unlabelled] = []
    if inputs.get("problems"):
        problems, unlabelled, stats["problems"] = _problems(config, inputs["problems"])
        for p in problems:
            by_task[p.task_id] = dataclasses.replace(p, prompt="import sys\n")
            statement = p.prompt  # evaluate's prompt: the statement as comments; the chat turn gets plain text
            outcomes += _asked(
                p.task_id,
                "distill:problems",
                "stdio",
                prompts.stdio(_plain(statement)),
                k,
                json.dumps([{"input": i, "output": o} for i, o in p.cases]),
                inputs["problems"],
            )
        for u in unlabelled:
            outcomes += _asked(
                u.task_id,
                "distill:mutual",
                "stdio",
                prompts.stdio(u.statement),
                config.mutual_verification,
                "",
                inputs["problems"],
            )
    if not outcomes:
        raise InputError("synth --mode distill: needs --tasks DIR and/or --problems FILE with something to answer")
    if len({o.task_id for o in outcomes}) != len({(o.task_id, o.source) for o in outcomes}):
        raise InputError("synth: a task id occurs both in --tasks and --problems")
    _ask(config, teacher, outcomes)
    _judge(config, sandbox, outcomes, by_task)
    stats["mutual"] = mutual.verify(config, sandbox, [o for o in outcomes if o.source == "distill:mutual"], unlabelled)
    stats.update(_pass_rates(config, outcomes))
    _final_checks(outcomes, contamination)
    stats["requested"] = len(outcomes)
    return outcomes, stats


def _plain(prompt: str) -> str:
    """evaluate's base-model prompt (the statement as ``#`` comments) back to plain text."""
    lines = [line[2:] if line.startswith("# ") else "" if line == "#" else line for line in prompt.splitlines()]
    text = "\n".join(line for line in lines if not line.startswith(("import sys", "A complete Python 3 program")))
    return text.replace("Problem: ", "", 1).strip()


def _ask(config, teacher: Teacher, outcomes: list[Outcome]) -> None:
    requests = [
        Request(
            prompts.body(
                config.teacher_model,
                o.prompt,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=config.seed * 1000 + o.sample,
            )
        )
        for o in outcomes
    ]
    for outcome, reply in zip(outcomes, teacher.ask(requests, "distill")):
        outcome.answer, outcome.truncated = reply.text, reply.finish_reason == "length"
        if reply.error:
            outcome.drop("teacher_error", reply.error)


def _judge(config, sandbox, outcomes: list[Outcome], by_task: dict) -> None:
    """Tasks and labelled problems: the answer's last python block against the tests."""
    from codemill.tasks import score

    todo = [o for o in outcomes if o.kept and o.source != "distill:mutual"]

    def one(outcome: Outcome) -> tuple[bool, str]:
        try:
            code = answers.last_python_block(outcome.answer)
        except answers.Unusable as e:
            return False, f"unparseable: {e}"
        task = by_task[outcome.task_id]
        if outcome.source == "distill:tasks":
            result = score.score_one(task, f"```python\n{code}```", sandbox, config.exec_timeout_s)
            return result.passed, ("unparseable: " + result.detail) if result.detail.startswith(
                "parse error"
            ) else result.detail
        return stdio.judge(sandbox, task, code)

    if isinstance(sandbox, Remote):
        verdicts = _remote_judge(sandbox, todo, by_task)
    else:
        verdicts = run_parallel(one, todo, config.workers, "distill: verify")
    for outcome, (passed, detail) in zip(todo, verdicts):
        if passed:
            continue
        reason = (
            "unparseable"
            if detail.startswith("unparseable")
            else "timeout"
            if detail.startswith("timed out")
            else "failed_tests"
        )
        outcome.drop(reason, detail.removeprefix("unparseable: "))


def _remote_judge(remote: Remote, todo: list[Outcome], by_task: dict) -> list[tuple[bool, str]]:
    """``_judge``'s verdicts from the service: one "tasks" and one "stdio" request (per batch)."""
    verdicts: list[tuple[bool, str] | None] = [None] * len(todo)
    sent: dict[str, list[tuple[int, str]]] = {"tasks": [], "stdio": []}
    for number, outcome in enumerate(todo):
        try:
            code = answers.last_python_block(outcome.answer)
        except answers.Unusable as e:
            verdicts[number] = (False, f"unparseable: {e}")
            continue
        if outcome.source == "distill:tasks":
            sent["tasks"].append((number, f"```python\n{code}```"))
        else:
            sent["stdio"].append((number, code))
    ids = {kind: sorted({todo[n].task_id for n, _ in items}) for kind, items in sent.items()}
    # the service puts evaluate's prompt (the statement as comments, then "import sys") before a stdio program
    # as evaluate's loader builds it; the task id stands in for the statement, which changes no verdict
    extra = {
        "tasks": {"tasks": [client.task_row(by_task[t]) for t in ids["tasks"]]},
        "stdio": {
            "problems": [
                {
                    "question_id": t,
                    "question_content": t,
                    "public_test_cases": [{"input": i, "output": o, "testtype": "stdin"} for i, o in by_task[t].cases],
                }
                for t in ids["stdio"]
            ]
        },
    }
    for kind, items in sent.items():
        if not items:
            continue
        rows = remote.score(
            kind, [{"task_id": todo[n].task_id, "completion": text} for n, text in items], **extra[kind]
        )
        for (number, _), row in zip(items, rows):
            detail = str(row["result"])
            verdicts[number] = (
                bool(row["passed"]),
                "unparseable: " + detail if detail.startswith("parse error") else detail,
            )
    return verdicts  # type: ignore[return-value]


def _pass_rates(config, outcomes: list[Outcome]) -> dict:
    """Per task: answers that passed / answers received; the range filter; a histogram."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.task_id].append(o)
    rates, histogram = [], defaultdict(int)
    low, high = config.pass_rate_range or (0.0, 1.0)
    for task_id in sorted(groups):
        answered = [o for o in groups[task_id] if o.reason != "teacher_error"]
        passed = [o for o in answered if o.kept]
        rate = len(passed) / len(answered) if answered else 0.0
        rates.append([task_id, len(passed), len(answered)])
        histogram[mutual.share_bin(rate)] += 1
        if passed and not low <= rate <= high:
            for o in passed:
                o.drop("pass_rate", f"the task's pass rate {rate:.2f} is outside [{low:g}, {high:g}]")
    in_range = sum(1 for _, p, a in rates if a and low <= p / a <= high)
    return {
        "tasks_asked": len(groups),
        "tasks_in_pass_rate_range": in_range,
        "pass_rate_histogram": dict(sorted(histogram.items())),
        "pass_rates": rates,
    }


def _final_checks(outcomes: list[Outcome], contamination: Contamination) -> None:
    seen: set[tuple[str, str]] = set()
    for o in outcomes:
        if not o.kept:
            continue
        solution = answers.last_python_block(o.answer)
        why = contamination.find(o.prompt + "\n" + solution)
        if why:
            o.drop("contaminated", why)
            continue
        key = (o.task_id, normalized_key(answers.final_part(o.answer)))
        if key in seen:
            o.drop("duplicate", f"the same answer as an earlier sample of {o.task_id}")
        seen.add(key)
