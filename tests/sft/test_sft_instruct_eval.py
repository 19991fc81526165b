"""An SFT'd model evaluated as an instruct model: HumanEval through its chat template, and the tasks'
held-out split scored per kind in the same metrics.json and report."""

from __future__ import annotations

import json
import os

import pytest

from codemill.cli import main
from codemill.evaluate import chat
from codemill.evaluate.data import Sample, write_jsonl
from codemill.evaluate.humaneval import load_tasks
from codemill.sft import SftConfig, sft
from tests.sft.conftest import fast, generate_task, write_synth, write_tasks

STRLEN = "def strlen(string: str) -> int:\n    return len(string)\n"


def fn_task(kind: str, name: str, shown: str, given: str, value: str, answer: str) -> dict:
    reference = f"def {name}(x):\n    return x + {name[1:]}\n"
    return {
        "task_id": f"{kind}/{name}",
        "kind": kind,
        "entry_point": name,
        "split": "heldout",
        "prompt": f"{reference}\n\n# Replace ?? as asked.\n{shown}\n",
        "reference": reference,
        "tests": json.dumps([{"input": given, "output": value}]),
        "answer": answer,
        "language": "python",
    }


TASKS = [
    generate_task(0, "train"),
    generate_task(1, "heldout"),
    fn_task("output", "f2", "assert f2(1) == ??", "1", "3", "3"),
    fn_task("input", "f3", "assert f3(??) == 4", "1", "4", "1"),
]


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, tmp_path_factory):
    """A tiny model taught one HumanEval answer in EvalPlus's chat format, then `codemill eval --prompt-style chat`."""
    root = tmp_path_factory.mktemp("instruct")
    problem = load_tasks(24)[23]  # HumanEval/23, strlen: a two-line answer a tiny model can learn
    messages, prefill = chat.humaneval_turns(problem.prompt)
    synth = write_synth(root / "synth", [messages + [{"role": "assistant", "content": prefill + STRLEN + "```"}]])
    sft(SftConfig(**fast(max_steps=60, lr=1e-2, batch_size=1, seq_len=512)), tiny_model_dir, synth, str(root / "sft"))
    tasks = write_tasks(root / "tasks", TASKS)
    out = str(root / "eval")
    code = main(
        [
            "eval",
            "--model",
            str(root / "sft" / "model"),
            "--output",
            out,
            "--prompt-style",
            "chat",
            "--benchmarks",
            "humaneval",
            "--limit",
            "24",
            "--max-new-tokens",
            "48",
            "--threads",
            "1",
            "--tasks",
            tasks,
            "--no-tracking",
        ]
    )
    assert code == 0
    return out, tasks


def results(out: str) -> dict:
    rows = [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]
    return {(r["benchmark"], r["task_id"]): r for r in rows}


def test_the_taught_humaneval_answer_passes_in_chat_mode(evaluated):
    out, _ = evaluated
    row = results(out)[("humaneval", "HumanEval/23")]
    assert row["completion"] == STRLEN and row["passed"]  # the code block, without the prose or the fence
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["humaneval"]["greedy"]["passed"] >= 1
    assert json.load(open(os.path.join(out, "generation.json")))["benchmarks"]["humaneval"]["prompt_style"] == "chat"


def test_only_the_held_out_tasks_are_generated_and_scored_per_kind(evaluated):
    out, _ = evaluated
    scored = {task_id for bench, task_id in results(out) if bench == "tasks"}
    assert scored == {"t1", "output/f2", "input/f3"}  # not t0, a train task
    tasks = json.load(open(os.path.join(out, "metrics.json")))["tasks"]["greedy"]
    assert tasks["tasks_total"] == 3 and set(tasks["by_kind"]) == {"generate", "output", "input"}
    assert "tasks" in open(os.path.join(out, "report.html")).read()


def test_known_right_and_wrong_answers_are_scored_so(evaluated):
    out, tasks = evaluated
    answers = {"t1": "```python\ndef f1(x):\n    return x + 1\n```", "output/f2": "3", "input/f3": "assert f3(2) == 4"}
    write_jsonl(os.path.join(out, "samples", "tasks.jsonl"), [Sample("tasks", k, v) for k, v in answers.items()])
    assert (
        main(
            ["eval", "--output", out, "--step", "score", "--benchmarks", "humaneval", "--limit", "24", "--no-tracking"]
        )
        == 0
    )
    tasks = json.load(open(os.path.join(out, "metrics.json")))["tasks"]["greedy"]
    assert {k: v["pass@1"] for k, v in tasks["by_kind"].items()} == {"generate": 1.0, "output": 1.0, "input": 0.0}
    assert tasks["pass@1"] == pytest.approx(2 / 3)
