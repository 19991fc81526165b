"""Decontamination against HumanEval (bundled) and pluggable benchmark JSONL files."""

import gzip
import json
import os

import numpy as np
import pytest
from validate_corpus import humaneval_rows

from codemill.stage import InputError
from codemill.validate.decontam import BenchmarkText, Decontaminator, load_benchmarks, tuple_hashes


@pytest.fixture(scope="module")
def humaneval():
    texts = load_benchmarks(["humaneval"], ["prompt", "canonical_solution", "test"])
    return Decontaminator(texts)


def test_humaneval_has_164_problems_and_three_texts_each(humaneval):
    texts = load_benchmarks(["humaneval"], ["prompt", "canonical_solution", "test"])
    assert len({t.task_id for t in texts}) == 164 and len(texts) == 164 * 3


def test_a_copied_canonical_solution_is_found(humaneval):
    task = humaneval_rows()[17]
    text = "import os\n\n" + task["prompt"] + task["canonical_solution"] + "\n\nprint('done')\n"
    assert humaneval.find(text)[0] == task["task_id"]


def test_a_solution_alone_reformatted_is_found(humaneval):
    task = humaneval_rows()[129]
    # re-indented and joined onto fewer lines: whitespace tokens still line up
    body = " ".join(task["canonical_solution"].split())
    assert humaneval.find(f"def solve(grid, k):\n    {body}\n")[0] == task["task_id"]


def test_the_tests_of_a_task_are_found(humaneval):
    task = humaneval_rows()[42]
    assert humaneval.find(task["test"])[0] == task["task_id"]


def test_short_benchmark_strings_need_an_exact_match(humaneval):
    # HumanEval/53's whole canonical solution is 4 tokens: matched exactly, not by n-gram
    assert humaneval.find("def add(a, b):\n    return x + y\n") == ("HumanEval/53", "return x + y")
    assert humaneval.find("def add(a, b):\n    return x + z\n") is None
    # 2-token solutions ("return len(string)") are below min_tokens=3 and never matched alone
    assert humaneval.find("n = 0\nreturn len(string)\n") is None


def test_ordinary_code_is_not_contaminated(humaneval):
    root = os.path.dirname(os.__file__)
    for name in ("textwrap.py", "bisect.py", "heapq.py", "shlex.py", "json/decoder.py"):
        with open(os.path.join(root, name), encoding="utf-8") as f:
            assert humaneval.find(f.read()) is None, name


def test_a_custom_benchmark_jsonl_is_pluggable(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl.gz"
    rows = [
        {
            "task_id": 11,
            "text": "Write a python function to remove first and last occurrence of a given character",
            "code": "def remove_Occ(s,ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]",
            "test_list": ['assert remove_Occ("hello","l") == "heo"'],
        }
    ]
    with gzip.open(mbpp, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    d = Decontaminator(load_benchmarks([str(mbpp)], ["text", "code", "test_list"]))
    test = 'assert remove_Occ("hello","l") == "heo"'
    assert d.find(f"x = 1\n{test}\n") == ("11", test)
    assert d.find("# Write a python function to remove first and last occurrence of a given character\n")[0] == "11"
    assert d.find("def unrelated():\n    return 1\n") is None


def test_a_hash_hit_is_confirmed_token_by_token():
    assert Decontaminator([]).find("a b c d e f g h i j k") is None  # no benchmark at all
    d = Decontaminator([BenchmarkText("t", "x y z")], ngram=3, min_tokens=3)
    assert d.find("z y x") is None
    # force a collision: the hash of "z y x" (ids 3 2 1) now sits in the lookup table
    collision = tuple_hashes(np.array([[3, 2, 1]], dtype=np.uint64))
    d.hashes[3] = np.sort(np.concatenate([d.hashes[3], collision]))
    assert d.find("z y x") is None
    assert d.find("w z y x y z") == ("t", "x y z")


def test_bad_benchmark_files_fail_naming_the_file(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task_id": 1, "text": "ok"}\n{"task_id": 2,\n')
    with pytest.raises(InputError, match=r"broken.jsonl:2: not valid JSON"):
        load_benchmarks([str(broken)], ["text"])
    empty = tmp_path / "nofields.jsonl"
    empty.write_text('{"task_id": 1, "question": "?"}\n')
    with pytest.raises(InputError, match=r"nofields.jsonl: no text in any of the fields \['text'\]"):
        load_benchmarks([str(empty)], ["text"])
