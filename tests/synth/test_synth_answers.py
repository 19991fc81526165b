"""Reading answers: sections, the last python block, reasoning, and what counts as tests."""

from __future__ import annotations

import pytest

from codemill.synth.answers import Unusable, last_python_block, parse_written
from tests.synth.scripted import answer

SOLUTION = "def f(x):\n    return x\n"


def test_sections_are_read_and_reasoning_blocks_do_not_count():
    text = "<think>\n```python\nraise SystemExit\n```\n</think>\n" + answer("Write f.", SOLUTION, "assert f(1) == 1\n")
    written = parse_written(text.replace("[Tests]", "**[Tests]**"))
    assert (written.problem, written.solution, written.tests) == ("Write f.", SOLUTION, "assert f(1) == 1\n")


@pytest.mark.parametrize(
    "text, reason, words",
    [
        ("Just prose.", "unparseable", "no [Problem] or [Solution]"),
        ("[Problem]\nWrite f.\n[Solution]\nreturn x\n", "unparseable", "0 ```python blocks"),
        (answer("Write f.", "def f(:\n", "assert True\n"), "unparseable", "solution is not valid Python"),
        (answer("Write f.", SOLUTION, None), "no_tests", "no [Tests] section"),
        (answer("Write f.", SOLUTION, "print(f(1))\n"), "no_tests", "no assert"),
        (answer("Write f.", SOLUTION, "def test():\n    assert f(1) == 2\n"), "no_tests", "no assert"),
        ("<think>still thinking " + answer("Write f.", SOLUTION, "assert f(1)\n"), "unparseable", "never closes"),
    ],
)
def test_unusable_answers_get_their_reason(text, reason, words):
    with pytest.raises(Unusable) as e:
        parse_written(text)
    assert e.value.reason == reason and words in str(e.value)


def test_asserts_in_a_loop_or_branch_count():
    written = parse_written(answer("Write f.", SOLUTION, "for i in range(3):\n    assert f(i) == i\n"))
    assert written.tests.startswith("for i")


def test_distill_takes_the_last_block_after_the_reasoning():
    text = "<think>```python\nwrong()\n```</think>\nFirst try:\n```python\na = 1\n```\nFinal:\n```py\nb = 2\n```\n"
    assert last_python_block(text) == "b = 2\n"
    with pytest.raises(Unusable, match="no ```python block"):
        last_python_block("<think>```python\nx = 1\n```</think> the answer is 2")
