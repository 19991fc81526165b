"""Rewards: the format check, code blocks, the reward modes, and real sandboxed judging."""

from __future__ import annotations

import json

import pytest

from codemill.evaluate import stdio
from codemill.evaluate.sandbox import Sandbox
from codemill.rl import data
from codemill.rl.config import RLConfig
from codemill.rl.reward import Rewarder, Score, code_block, format_ok, reward_value

GOOD = "<think>add them</think>\n```python\nprint(sum(map(int, input().split())))\n```\n"


def test_format_needs_one_think_block_then_one_code_block():
    assert format_ok(GOOD)
    assert not format_ok("```python\nprint(1)\n```")  # no reasoning
    assert not format_ok(GOOD + "```python\nprint(2)\n```")  # two code blocks
    assert not format_ok("<think>a</think><think>b</think>```python\nx\n```")
    assert not format_ok(GOOD + "and some chatter")
    assert code_block(GOOD) == "print(sum(map(int, input().split())))\n"
    assert code_block("<think>```python\nwrong\n```</think>no block") == "no block"


def test_reward_modes():
    s = Score(passed=False, fraction=0.5, detail="x")
    assert reward_value(s, "pass", False, 0.0) == 0.0
    assert reward_value(s, "fraction", False, 0.0) == 0.5
    assert reward_value(Score(True, 1.0, "passed"), "weighted", True, 0.1) == pytest.approx(1.2)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as box:
        yield box


def _bundled():
    loaded, _ = data.load(RLConfig(decontaminate=[]), None)
    solutions = {
        json.loads(line)["task_id"]: json.loads(line)["completion"]
        for line in open(stdio.SHIPPED_SOLUTIONS, encoding="utf-8")
    }
    return loaded.train, solutions


def test_problems_reward_is_the_share_of_cases_the_judge_passes(sandbox):
    tasks, solutions = _bundled()
    task = next(t for t in tasks if t.task_id == "cm-stdio-001")  # a + b, three cases
    right = solutions[task.task_id]
    wrong_on_big = "a, b = map(int, sys.stdin.read().split())\nprint(min(a + b, 10**9))\n"
    with Rewarder(workers=2, sandbox=sandbox) as rewarder:
        good, partial, broken = rewarder.score([task] * 3, [right, wrong_on_big, "print(("])
    assert (good.passed, good.fraction, good.executions) == (True, 1.0, 3)
    assert (partial.passed, partial.fraction) == (False, pytest.approx(2 / 3))
    assert partial.detail == "failed: wrong answer (test 3)"
    assert (broken.passed, broken.fraction) == (False, 0.0)
    assert stdio.judge(sandbox, task.problem, right) == (True, "passed")  # the same judge decides


def test_chat_problems_run_the_code_block(sandbox):
    tasks, _ = _bundled()
    task = data.chat_problem(next(t for t in tasks if t.task_id == "cm-stdio-001"))
    assert "Think inside <think>" in task.prompt and "import sys" not in task.prompt
    with Rewarder(workers=1, sandbox=sandbox, chat=True) as rewarder:
        [score] = rewarder.score([task], [GOOD])
    assert score.passed and score.fraction == 1.0
