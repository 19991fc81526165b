"""Inputs of a function, taken from text: its doctest examples (``>>> name(...)``) and literal
calls anywhere in the same repository (its tests, its docs' code, other modules), keyword
arguments included. Only the arguments are taken; what an example or an assertion says the
result is (``>>>``'s expected output, ``assert name(x) == y``, ``assertEqual``) is kept only
to count the examples that disagree with what the reference really returns.

An input is the argument source text (``-3, low=-2, high=2``): at least one argument, every
argument a literal (``ast.literal_eval`` accepts it), no ``*``/``**`` unpacking.
"""

from __future__ import annotations

import ast
import doctest
import re
from dataclasses import dataclass

ASSERT_METHODS = frozenset({"assertEqual", "assertEquals", "assert_equal"})
CALLED = re.compile(r"([A-Za-z_]\w*)\s*\(")  # every name followed by "(": a superset of the calls


@dataclass(frozen=True)
class Example:
    """One input and, where the text states one, the result it claims (source text)."""

    input: str
    claimed: str | None
    origin: str  # "doctest" or "path:line"


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def argument_source(call: ast.Call, max_chars: int) -> str | None:
    """The call's arguments as source, when there are some and every one is a literal; else None
    (a call with no arguments is no input to vary)."""
    if not (call.args or call.keywords):
        return None
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    if not all(_is_literal(a) for a in call.args) or not all(_is_literal(k.value) for k in call.keywords):
        return None
    text = ", ".join([ast.unparse(a) for a in call.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords])
    return text if len(text) <= max_chars else None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def doctest_examples(docstring: str, name: str, max_chars: int) -> list[Example]:
    try:
        examples = doctest.DocTestParser().get_examples(docstring)
    except ValueError:  # inconsistent indentation and the like: no usable examples
        return []
    found = []
    for ex in examples:
        node, claimed = _doctest_call(ex.source, ex.want)
        if isinstance(node, ast.Call) and _callee(node) == name:
            args = argument_source(node, max_chars)
            if args is not None:
                found.append(Example(args, claimed, "doctest"))
    return found


def _doctest_call(source: str, want: str) -> tuple[ast.AST | None, str | None]:
    """The call of ``>>> f(x)`` (its output is a claim), ``>>> y = f(x)`` or ``>>> print(f(x))`` (no claim)."""
    try:
        body = ast.parse(source.strip()).body
    except (SyntaxError, ValueError, RecursionError):
        return None, None
    if len(body) != 1 or not isinstance(body[0], (ast.Expr, ast.Assign)):
        return None, None
    node = body[0].value
    if isinstance(body[0], ast.Assign):
        return node, None
    if isinstance(node, ast.Call) and _callee(node) == "print" and len(node.args) == 1 and not node.keywords:
        return node.args[0], None
    return node, want.strip() or None


class CallIndex:
    """The literal calls of ``names`` in a repository, by the called name, with the result
    asserted for each (``names=None``: every name)."""

    def __init__(self, max_chars: int, names: set[str] | None = None):
        self.max_chars = max_chars
        self.names = names
        self.calls: dict[str, list[Example]] = {}

    def add_module(self, path: str, tree: ast.Module, text: str | None = None) -> None:
        """Index the module's literal calls; with its ``text``, a module that never calls one of
        ``names`` (by a regex over the text, much cheaper than walking the tree) is skipped."""
        if text is not None and self.names is not None and not self.names & set(CALLED.findall(text)):
            return
        claimed: dict[int, str] = {}  # id of a Call node -> the literal it is asserted to equal
        calls = []
        for node in ast.walk(tree):  # one pass: walking every tree is most of the static phase's time
            if isinstance(node, (ast.Assert, ast.Call)):
                for call, value in _assertions(node):
                    claimed[id(call)] = ast.unparse(value)
                if (
                    isinstance(node, ast.Call)
                    and (node.args or node.keywords)
                    and (self.names is None or _callee(node) in self.names)
                ):
                    calls.append(node)
        for node in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):  # source order
            name = _callee(node)
            if name:
                args = argument_source(node, self.max_chars)
                if args is not None:
                    self.calls.setdefault(name, []).append(
                        Example(args, claimed.get(id(node)), f"{path}:{node.lineno}")
                    )

    def examples(self, name: str) -> list[Example]:
        return self.calls.get(name, [])


def _assertions(node: ast.AST) -> list[tuple[ast.Call, ast.AST]]:
    """(call, literal) pairs of ``assert call == literal`` (either side) and ``assertEqual(call, literal)``."""
    pairs: list[tuple[ast.AST, ast.AST]] = []
    if (
        isinstance(node, ast.Assert)
        and isinstance(node.test, ast.Compare)
        and len(node.test.ops) == 1
        and isinstance(node.test.ops[0], ast.Eq)
    ):
        pairs = [(node.test.left, node.test.comparators[0])]
    elif isinstance(node, ast.Call) and _callee(node) in ASSERT_METHODS and len(node.args) >= 2:
        pairs = [(node.args[0], node.args[1])]
    out = []
    for a, b in pairs:
        for call, value in ((a, b), (b, a)):
            if isinstance(call, ast.Call) and _is_literal(value):
                out.append((call, value))
    return out


def select(doctests: list[Example], calls: list[Example], max_cases: int) -> list[Example]:
    """Doctests first, then calls in (path, line) order; one example per distinct input."""
    chosen: dict[str, Example] = {}
    for ex in doctests + sorted(calls, key=lambda e: _origin_key(e.origin)):
        if ex.input not in chosen:
            chosen[ex.input] = ex
        elif chosen[ex.input].claimed is None and ex.claimed is not None:
            chosen[ex.input] = ex  # keep a stated result, to count disagreements
    return list(chosen.values())[:max_cases]


def _origin_key(origin: str) -> tuple[str, int]:
    path, _, line = origin.rpartition(":")
    return path, int(line) if line.isdigit() else 0
