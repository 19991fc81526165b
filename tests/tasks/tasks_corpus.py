"""A small held-out-style corpus for the tasks tests, written as validate writes its output
(``files/shard-00000-of-00001.parquet`` in ``records.FILE_SCHEMA``).

Each documented top-level function is built to end one way; ``EXPECTED`` says how
(None: it makes tasks). The contaminated one is HumanEval/0's own prompt and solution.
"""

from __future__ import annotations

import gzip
import json
import os

from codemill import io
from codemill.records import FILE_SCHEMA, FileRecord, to_table

CORE = '''\
import random
import time
from collections import Counter

import numpy as np

LIMIT = 10


class Point:
    def __init__(self, x):
        self.x = x


def clamp(x, low=0, high=LIMIT):
    """Clamp x into [low, high].

    >>> clamp(-3, low=-2, high=2)
    -2
    """
    return max(low, min(high, x))


def double(x):
    """Twice x (the example below is wrong on purpose).

    >>> double(2)
    5
    """
    return x * 2


def letters(word):
    """Count the letters of a word.

    >>> letters("abca")
    {'a': 2, 'b': 1, 'c': 1}
    """
    return dict(sorted(Counter(word).items()))


def stamp(x):
    """Add the current time (impure)."""
    return time.time() + x


def jitter(x):
    """Add noise (impure).

    >>> jitter(1)
    1.5
    """
    return x + random.random()


def spin(n):
    """Never returns.

    >>> spin(1)
    """
    while True:
        n += 1


def boom(x):
    """Always raises.

    >>> boom(1)
    """
    raise ValueError(f"bad {x}")


def count_up(n):
    """A generator.

    >>> list(count_up(2))
    [0, 1]
    """
    yield from range(n)


def make_point(x):
    """An object, not plain data.

    >>> make_point(1)
    """
    return Point(x)


def shuffle_set(words):
    """Set order depends on PYTHONHASHSEED.

    >>> shuffle_set(["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "yak"])
    """
    return list(set(words))


def lonely(x):
    """Nobody ever calls this one."""
    return x + 1


def to_array(x):
    """Needs numpy, which the sandbox does not have.

    >>> to_array([1])
    """
    return np.asarray(x)


def stub(x):
    """A stub: the body is its docstring.

    >>> stub(1)
    """


def fill(items):
    """A procedure: it changes its argument and returns nothing.

    >>> fill([1])
    """
    items.append(0)


def hog(n):
    """Asks for far more memory than the sandbox allows.

    >>> hog(1)
    """
    return len(bytearray(n << 40))
'''

TESTS = """\
from mathy.core import clamp, double, scale


def test_clamp():
    assert clamp(15) == 10
    assert clamp(5, high=3) == 4  # wrong on purpose: the reference returns 3


def test_scale():
    assert scale(2, factor=3) == 6
    assert scale([1], factor=2) == [1, 1]
"""

SCALE = '''\
def scale(x, factor=2):
    """Multiply x by factor (sequences repeat)."""
    return x * factor
'''

# entry point -> the quarantine reason it must get (None: it makes tasks)
EXPECTED: dict[str, str | None] = {
    "clamp": None,
    "double": None,
    "letters": None,
    "scale": None,
    "stamp": "impure",
    "jitter": "impure",
    "spin": "timeout",
    "boom": "raises",
    "count_up": "generator",
    "make_point": "unserializable_output",
    "shuffle_set": "nondeterministic",
    "lonely": "no_inputs",
    "to_array": "non_stdlib_import",
    "hog": "raises",
    "has_close_elements": "contaminated",
    "stub": "no_body",
    "fill": "returns_none",
}
VENDORED = "clamp"  # also in beta/vendor, byte for byte except a comment: one task set, one duplicate


def humaneval_zero() -> str:
    from codemill.validate.decontam import humaneval_path

    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    return first["prompt"] + first["canonical_solution"]


def _clamp_source() -> str:
    start = CORE.index("def clamp")
    return CORE[start : CORE.index("\n\n\ndef double")] + "\n"


def repositories() -> dict[str, dict[str, str]]:
    vendored = "LIMIT = 10\n\n\n" + _clamp_source().replace("return max(", "return max(  # vendored\n        ")
    return {
        "alpha/mathy": {
            "mathy/core.py": CORE,
            "mathy/scale.py": SCALE,
            "tests/test_core.py": TESTS,
            "README.md": "# mathy\n\nSmall math helpers.\n",
        },
        "beta/vendor": {"vendor/util.py": vendored, "vendor/humaneval.py": humaneval_zero()},
    }


def _language(path: str) -> str:
    return "python" if path.endswith(".py") else "markdown"


def write_corpus(folder: str, repos: dict[str, dict[str, str]] | None = None) -> str:
    """Write the repositories as validate's ``files/`` output; returns the folder."""
    records = [
        FileRecord(repo, path, text, _language(path), source=f"{repo}/{path}").finalize()
        for repo, files in sorted((repos or repositories()).items())
        for path, text in sorted(files.items())
    ]
    io.write_parquet(to_table(records, FILE_SCHEMA), os.path.join(folder, "files", "shard-00000-of-00001.parquet"))
    return folder
