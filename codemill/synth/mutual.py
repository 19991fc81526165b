"""Mutual verification (rStar-Coder): label test inputs that have no trusted outputs by the
agreement of several teacher solutions.

For a problem with inputs ``x_1..x_n`` and ``K`` answers: every answer's last python block
runs on every input in the sandbox (stdio mode). An input's output is *accepted* when the
largest group of identical outputs (lines stripped) holds at least ``agreement`` of the
``K`` answers received; answers without code, and runs that fail or time out, count
against agreement. An answer is kept when at least one output was accepted and it
produced every accepted output; the accepted ``(input, output)`` pairs become its tests.
Inputs without agreement are left out of the tests; an answer of a problem with no
accepted input is ``no_agreement``. The histogram counts inputs by their majority share.

Rows come from the same JSONL file as the labelled problems: a row with ``question_id``,
a statement (``question`` or ``question_content``) and a non-empty ``inputs`` list but no
``outputs`` (evaluate's loader, which needs outputs, sets such rows aside).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from codemill.evaluate.data import read_jsonl
from codemill.evaluate.sandbox import run_parallel
from codemill.synth import answers
from codemill.synth.output import Outcome
from codemill.synth.service import Remote

OUTPUT_BYTES = 64 << 10


@dataclass(frozen=True)
class Unlabelled:
    task_id: str
    statement: str
    inputs: tuple[str, ...]


def read_unlabelled(url: str) -> list[Unlabelled]:
    rows, _ = read_jsonl(url)
    found = []
    for row in rows:
        task_id = row.get("question_id") or row.get("task_id")
        statement = row.get("question_content") or row.get("question")
        inputs = row.get("inputs")
        if task_id and isinstance(statement, str) and isinstance(inputs, list) and inputs and not row.get("outputs"):
            found.append(Unlabelled(str(task_id), statement, tuple(str(i) for i in inputs)))
    return found


def normalized(stdout: str) -> str:
    return "\n".join(line.strip() for line in stdout.strip().splitlines())


def share_bin(share: float) -> str:
    """The histogram bin of a share in [0, 1]: "0.6-0.7" (1.0 falls in "0.9-1.0")."""
    low = min(int(share * 10), 9) / 10
    return f"{low:.1f}-{low + 0.1:.1f}"


def _remote_outputs(
    remote: Remote, outcomes: list[Outcome], code: dict[int, str], by_id: dict[str, Unlabelled]
) -> dict[tuple[int, int], str | None]:
    """``run_one``'s answers from the service's "stdio_outputs" requests."""
    numbers = sorted(code)
    inputs = {outcomes[n].task_id: list(by_id[outcomes[n].task_id].inputs) for n in numbers}
    found = remote.outputs([(outcomes[n].task_id, "import sys\n" + code[n]) for n in numbers], inputs, OUTPUT_BYTES)
    return {
        (n, i): normalized(o["stdout"]) if o["status"] == "completed" and not o["truncated"] else None
        for n, outs in zip(numbers, found)
        for i, o in enumerate(outs)
    }


def verify(config, sandbox, outcomes: list[Outcome], problems: list[Unlabelled]) -> dict:
    """Judge the answers of unlabelled problems in place; returns the agreement stats."""
    if not problems:
        return {}
    by_id = {p.task_id: p for p in problems}
    code: dict[int, str] = {}
    for number, o in enumerate(outcomes):
        if not o.kept:
            continue
        try:
            code[number] = answers.last_python_block(o.answer)
        except answers.Unusable as e:
            o.drop(e.reason, str(e))
    runs = [(n, i) for n in sorted(code) for i in range(len(by_id[outcomes[n].task_id].inputs))]

    def run_one(item: tuple[int, int]) -> str | None:
        number, i = item
        given = by_id[outcomes[number].task_id].inputs[i]
        run = sandbox.run("import sys\n" + code[number], mode="stdio", stdin=given, stdout_bytes=OUTPUT_BYTES)
        return normalized(run.stdout) if run.passed and not run.truncated else None

    if isinstance(sandbox, Remote):
        produced = _remote_outputs(sandbox, outcomes, code, by_id)
    else:
        produced = dict(zip(runs, run_parallel(run_one, runs, config.workers, "distill: mutual verification")))
    groups: dict[str, list[int]] = defaultdict(list)
    for number, o in enumerate(outcomes):
        groups[o.task_id].append(number)
    histogram: Counter = Counter()
    labelled_inputs = 0
    for task_id, numbers in sorted(groups.items()):
        received = [n for n in numbers if outcomes[n].reason != "teacher_error"]
        accepted = {}
        for i in range(len(by_id[task_id].inputs)):
            votes = Counter(produced[(n, i)] for n in received if produced.get((n, i)) is not None)
            top, count = votes.most_common(1)[0] if votes else (None, 0)
            share = count / len(received) if received else 0.0
            histogram[share_bin(share)] += 1
            if top is not None and share >= config.agreement:
                accepted[i] = top
        labelled_inputs += len(accepted)
        tests = json.dumps([{"input": by_id[task_id].inputs[i], "output": out} for i, out in sorted(accepted.items())])
        for n in received:
            o = outcomes[n]
            o.tests = tests
            if not o.kept:
                continue
            if not accepted:
                o.drop(
                    "no_agreement",
                    f"no input's output reached agreement {config.agreement:g} among {len(received)} answers",
                )
                continue
            wrong = [i for i, out in sorted(accepted.items()) if produced.get((n, i)) != out]
            if wrong:
                o.drop(
                    "failed_tests",
                    f"differs from the accepted output on input {wrong[0] + 1}"
                    f" ({len(wrong)} of {len(accepted)} accepted inputs)",
                )
    return {
        "problems": len(problems),
        "inputs": sum(len(p.inputs) for p in problems),
        "inputs_labelled": labelled_inputs,
        "agreement": config.agreement,
        "agreement_histogram": dict(sorted(histogram.items())),
    }
