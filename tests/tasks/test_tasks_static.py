"""The static parts of the tasks stage, no sandbox: candidates and their references, the
impurity screen, inputs taken from text, the split and the prompts."""

from __future__ import annotations

import json

import pytest

from codemill.tasks.functions import parse_module
from codemill.tasks.inputs import CallIndex, doctest_examples, select
from codemill.tasks.kinds import build_tasks, split_of
from codemill.tasks.screen import screen

MODULE = '''\
import os, re
from typing import List
from .sibling import Thing
LIMIT = 10


def helper(x):
    return x + LIMIT


def uses_helper(a: Thing, b: List[int] = (1,)) -> int:
    """Needs helper, LIMIT and re; Thing only in an annotation."""
    return helper(a) + len(re.findall("a", "aa")) + len(b)


def needs_sibling(x):
    """Thing at run time: unresolvable here."""
    return Thing(x)


def recursive(n):
    """Calls itself."""
    return 1 if n < 2 else n * recursive(n - 1)


def nothing():
    """No parameters."""
    return 1


@staticmethod
def decorated(x):
    """Decorated."""
    return x


def undocumented(x):
    return x
'''


def candidates():
    return {c.entry_point: c for c in parse_module("r", "m.py", MODULE).candidates()}


def test_references_hold_what_the_function_needs():
    found = candidates()
    assert set(found) == {"uses_helper", "needs_sibling", "recursive", "nothing", "decorated"}  # documented only
    ref = found["uses_helper"].reference
    assert ref.startswith("from __future__ import annotations\n")  # Thing is never evaluated
    for needed in ("import re\n", "from typing import List", "LIMIT = 10", "def helper(x):"):
        assert needed in ref
    assert "import os" not in ref and "sibling" not in ref
    assert found["recursive"].reason == "" and found["recursive"].context == ""
    assert (found["needs_sibling"].reason, found["nothing"].reason, found["decorated"].reason) == (
        "unresolved",
        "no_parameters",
        "decorated",
    )


def test_names_imported_from_the_repository_are_inlined():
    from codemill.tasks.functions import link

    doc = '    """doc"""\n'
    files = {
        "pkg/__init__.py": "",
        "pkg/core.py": "SEP = ','\ndef split(x):\n    return x.split(SEP)\nSEP2 = ';'\n",
        "pkg/util.py": "from .core import split as cut\nfrom . import core\nSEP = '|'\n"
        f"def f(s):\n{doc}    return cut(s)\n"
        f"def g(s):\n{doc}    return core.split(s)\n"
        f"def h(s):\n{doc}    return cut(s) + [SEP]\n",
    }
    modules = [parse_module("r", path, text) for path, text in files.items()]
    link(modules)
    found = {c.entry_point: c for m in modules for c in m.candidates()}
    assert found["f"].reference.startswith("# from pkg/core.py\nSEP = ','\ndef split(x):")
    assert "cut = split" in found["f"].reference and "SEP2" not in found["f"].reference
    assert found["g"].reason == "unresolved"  # a module imported whole is not inlined
    assert (found["h"].reason, found["h"].detail) == (
        "unresolved",
        "name 'SEP' is defined in both pkg/core.py and pkg/util.py",
    )


def test_normalized_key_ignores_comments_and_layout():
    a = parse_module("r", "a.py", "def f(x):\n    '''d'''\n    return (x +\n  1)  # one\n").candidates()[0]
    b = parse_module("s", "b.py", 'def f(x):\n    """d"""\n    return x + 1\n').candidates()[0]
    c = parse_module("s", "c.py", 'def f(x):\n    """d"""\n    return x + 2\n').candidates()[0]
    assert a.key == b.key != c.key


@pytest.mark.parametrize(
    "source, flagged",
    [
        ("import os\ndef f(x):\n    return os.path.join(x, 'a')", ""),
        ("import os\ndef f(x):\n    return os.environ[x]", "environ"),
        ("import os.path as p\ndef f(x):\n    return p.exists(x)", "os.path.exists"),
        ("from datetime import date\ndef f(x):\n    return date.today()", "datetime"),
        ("import uuid\ndef f(x):\n    return uuid.uuid4()", "uuid"),
        ("def f(x):\n    import subprocess\n    return subprocess.run(x)", "subprocess"),
        ("import threading\ndef f(x):\n    return threading.Lock()", "threading"),
        ("def f(input):\n    return input + 1", ""),
        ("def f(x):\n    print(x)\n    return x", "print"),
        ("def f(x):\n    return id(x)", "id"),
        ("def f(x):\n    return hash(x)", "hash"),
        ("C = []\ndef f(x):\n    C.append(x)\n    return len(C)", "mutates module-level C"),
        ("C = {}\ndef f(x):\n    C[x] = 1\n    return x", "mutates module-level C"),
        ("C = {}\ndef f(x):\n    C = {}\n    C[x] = 1\n    return C", ""),
        ("N = 0\ndef f(x):\n    global N\n    N += 1\n    return x", "global N"),
        ("import sys\ndef f(x):\n    return sys.maxsize > x", ""),
        ("import sys\ndef f(x):\n    return sys.argv", "sys.argv"),
        ("def f(x):\n    return x.__globals__", "__globals__"),
        ("import io\ndef f(x):\n    b = io.StringIO()\n    b.write(x)\n    return b.getvalue()", ""),
        ("import io\ndef f(x):\n    return io.open(x).read()", "io.open"),
        ("from urllib.parse import quote\ndef f(x):\n    return quote(x)", ""),
        ("import urllib.request\ndef f(x):\n    return urllib.request.urlopen(x)", "urllib.request"),
    ],
)
def test_screen(source, flagged):
    why = screen(source)
    assert (flagged in why and why) if flagged else why == ""


def test_inputs_from_doctests_and_literal_calls():
    doc = ">>> f(1, b=[2])\n3\n>>> y = f(2)\n>>> print(f('a'))\na\n>>> f(*x)\n>>> g(1)\n>>> f(len([]))\n"
    assert [(e.input, e.claimed) for e in doctest_examples(doc, "f", 100)] == [
        ("1, b=[2]", "3"),
        ("2", None),
        ("'a'", None),
    ]
    index = CallIndex(max_chars=20)
    module = parse_module(
        "r",
        "t.py",
        "import m\ndef test():\n    assert m.f(3) == 4\n    assert 5 == f(4)\n"
        "    f(x)\n    f('a' * 100)\n    f(1, k={'a': (1, 2)})\n",
    )
    index.add_module("t.py", module.tree)
    assert [(e.input, e.claimed, e.origin) for e in index.examples("f")] == [
        ("3", "4", "t.py:3"),
        ("4", "5", "t.py:4"),
        ("1, k={'a': (1, 2)}", None, "t.py:7"),
    ]
    chosen = select(doctest_examples(doc, "f", 100), index.examples("f"), max_cases=4)
    assert [e.input for e in chosen] == ["1, b=[2]", "2", "'a'", "3"]


def test_split_and_prompts_are_stable():
    shares = [split_of(f"org/repo{i}", 0, 0.25) for i in range(400)]
    assert 60 < shares.count("heldout") < 140 and split_of("org/repo1", 0, 0.25) == shares[1]
    row = {
        "key": "ab" * 32,
        "repo": "r",
        "path": "m.py",
        "entry_point": "f",
        "context": "K = 1",
        "reference": "K = 1\n\n\ndef f(x):\n    '''d'''\n    return x + K\n",
        "stub": "def f(x):\n    '''d'''\n",
        "body": "    return x + K\n",
        "cases": json.dumps([["1", "2"], ["2", "3"]]),
    }
    made = {t["kind"]: t for t in build_tasks(row, ["generate", "output", "input"], 0, 0.0)}
    assert made["generate"]["prompt"] == "K = 1\n\n\ndef f(x):\n    '''d'''\n"
    assert len(json.loads(made["generate"]["tests"])) == 2 and made["generate"]["answer"] == row["body"]
    shown = json.loads(made["output"]["tests"])[0]
    assert made["output"]["prompt"].endswith(f"assert f({shown['input']}) == ??\n")
    assert made["output"]["answer"] == shown["output"]
    assert made["input"]["prompt"].endswith(f"assert f(??) == {json.loads(made['input']['tests'])[0]['output']}\n")
    assert build_tasks(row, ["output"], 0, 0.0) == build_tasks(row, ["output"], 0, 0.0)
