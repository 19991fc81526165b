"""Synth fixtures: a dedup-like corpus whose every line names the scenario the scripted
teacher plays for it, and the oss-instruct answers of each scenario."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from codemill import io
from codemill.records import FILE_SCHEMA, FileRecord, to_table
from codemill.validate.decontam import humaneval_path
from tests.synth.scripted import Reply, answer

LONG = (
    "The input is a list of pairs of integers, possibly empty, given in any order. For every pair, in the order "
    "the pairs are given, compute the sum of its two members and collect these sums into a new list that has "
    "exactly as many members as the input has pairs. Negative numbers and zero may appear anywhere, and the "
    "input list must not be modified. Return the new list of sums; for an empty input return an empty list. "
    "Write the function add_pairs(pairs) that does this, using only the Python standard library."
)
ADD = "def add_pairs(pairs):\n    return [a + b for a, b in pairs]\n"
ADD_TESTS = "assert add_pairs([]) == []\nassert add_pairs([(1, 2), (-3, 3)]) == [3, 0]\n"
RIGHT = {
    "right_b": (
        "Write is_palindrome(s): True when s reads the same backwards, ignoring case.",
        "def is_palindrome(s):\n    s = s.lower()\n    return s == s[::-1]\n",
        "assert is_palindrome('Abba')\nassert not is_palindrome('abc')\n",
    ),
    "right_c": (
        "Write count_vowels(s), the number of vowels (aeiou, either case) in s.",
        "def count_vowels(s):\n    return sum(ch in 'aeiou' for ch in s.lower())\n",
        "assert count_vowels('Hello') == 2\nassert count_vowels('') == 0\n",
    ),
    "right_d": (
        "Write running_max(xs): the list of maxima of every prefix of xs.",
        "def running_max(xs):\n    out, best = [], None\n    for x in xs:\n"
        "        best = x if best is None else max(best, x)\n        out.append(best)\n    return out\n",
        "assert running_max([1, 3, 2, 5]) == [1, 3, 3, 5]\nassert running_max([]) == []\n",
    ),
}
# scenario -> what becomes of its one answer
EXPECTED = {
    "right_a": "family_a",
    "dup_exact": "family_a",
    "dup_near": "family_a",
    "right_b": "kept",
    "wrong": "failed_tests",
    "unparseable": "unparseable",
    "untested": "no_tests",
    "contaminated": "contaminated",
    "slow_solution": "timeout",
    "hanging": "teacher_error",
    "rate_limited": "kept",
    "flaky_503": "kept",
}
SCENARIO = re.compile(r"SCENARIO:(\w+)")


def humaneval_0() -> dict:
    with gzip.open(humaneval_path(), "rt") as f:
        return json.loads(f.readline())


def oss_respond(content: str, seed: int, attempt: int):
    """The scripted teacher's oss-instruct answers (see EXPECTED)."""
    name = SCENARIO.search(content).group(1)
    if name == "right_a":
        return answer(LONG, ADD, ADD_TESTS)
    if name == "dup_exact":  # the same problem and solution, laid out differently, other tests
        return answer(
            LONG.replace(". ", ".\n\n"), ADD.replace("return ", "return  "), "assert add_pairs([(0, 0)]) == [0]\n"
        )
    if name == "dup_near":  # one word changed
        return answer(LONG.replace("possibly empty", "maybe empty"), ADD, ADD_TESTS)
    if name in ("right_b",):
        return answer(*RIGHT[name])
    if name == "wrong":
        return answer("Write double(x), twice x.", "def double(x):\n    return x + 2\n", "assert double(5) == 10\n")
    if name == "unparseable":
        return "Sure! Here is an interesting problem about sorting, and the code is left as an exercise."
    if name == "untested":
        return answer("Write triple(x).", "def triple(x):\n    return 3 * x\n", None)
    if name == "contaminated":
        he = humaneval_0()
        return answer(
            he["prompt"],
            he["prompt"] + he["canonical_solution"],
            "assert has_close_elements([1.0, 2.0, 3.9], 0.3) is False\n"
            "assert has_close_elements([1.0, 2.8, 3.0], 0.3) is True\n",
        )
    if name == "slow_solution":
        return answer("Write forever().", "def forever():\n    while True:\n        pass\n", "forever()\nassert True\n")
    if name == "hanging":
        return Reply(content="too late", delay=5.0)
    if name == "rate_limited":
        return Reply(status=429, headers={"Retry-After": "1"}) if attempt == 0 else answer(*RIGHT["right_c"])
    if name == "flaky_503":
        return Reply(status=503) if attempt == 0 else answer(*RIGHT["right_d"])
    raise AssertionError(name)


def write_corpus(folder, files: list[tuple[str, str, str]]) -> str:
    """``files``: (path, language, content) in one repository, written as dedup's files/."""
    records = [
        FileRecord("org/repo", path, content, language, source="test").finalize() for path, language, content in files
    ]
    io.write_parquet(to_table(records, FILE_SCHEMA), str(folder / "files" / "shard-00000-of-00001.parquet"))
    return str(folder)


@pytest.fixture()
def oss_corpus(tmp_path) -> str:
    files = [
        (f"{name}.py", "python", "\n".join(f"value_{i} = {i}  # SCENARIO:{name}" for i in range(20)))
        for name in EXPECTED
    ]
    files.append(("app.js", "javascript", "const x = 1; // SCENARIO:javascript_must_not_be_drawn\n"))
    return write_corpus(tmp_path / "corpus", files)
