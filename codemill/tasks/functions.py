"""Candidates: every top-level function with a docstring in a Python file, found with ``ast``,
and its reference: the function plus the module-level names it needs (imports, constants,
helper functions and classes), from its own module and from the modules of the same
repository it imports them from (:class:`codemill.tasks.assembly.Assembly`).

A candidate that cannot become a task carries its rejection (``reason``, ``detail``):
``async``, ``generator``, ``decorated`` (any decorator but ``functools.lru_cache``/``cache``),
``no_body``, ``no_parameters`` (its shape), ``unresolved`` (a name that is neither a builtin
nor bound at module level, a module imported whole from the repository, or a name two
modules define differently), ``non_stdlib_import`` (the sandbox has the standard library
only), ``too_large``.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field

from codemill.tasks.assembly import Assembly
from codemill.tasks.names import bindings, statement_names

MAX_REFERENCE_CHARS = 20_000
PURE_DECORATORS = frozenset({"lru_cache", "cache"})  # functools' memoizers: same results, only faster
_Scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass
class Candidate:
    repo: str
    path: str
    entry_point: str
    line: int
    function: str = ""  # the def's source
    context: str = ""  # module-level statements it needs, in module order
    stub: str = ""  # signature and docstring (the generate prompt's end)
    body: str = ""  # the rest of the function (the generate answer)
    docstring: str = ""
    node: ast.AST | None = field(default=None, repr=False, compare=False)
    reason: str = ""
    detail: str = ""

    @property
    def key(self) -> str:
        """sha256 of the normalized function source: the dedup key (computed when asked: most candidates never are)."""
        return normalized_key(self.node)

    @property
    def reference(self) -> str:
        return f"{self.context}\n\n\n{self.function}\n" if self.context else self.function + "\n"

    def reject(self, reason: str, detail: str) -> Candidate:
        self.reason, self.detail = reason, detail
        return self


def normalized_key(node: ast.AST) -> str:
    """The same function with other comments, quotes or layout gets the same key."""
    return hashlib.sha256(ast.unparse(node).encode("utf-8")).hexdigest()


def _is_generator(node: ast.AST) -> bool:
    todo = list(ast.iter_child_nodes(node))
    while todo:
        sub = todo.pop()
        if isinstance(sub, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(sub, _Scopes):  # a yield in a nested function makes that one a generator
            todo.extend(ast.iter_child_nodes(sub))
    return False


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _shape(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, str] | None:
    if isinstance(node, ast.AsyncFunctionDef):
        return "async", "an async function returns a coroutine, not plain data"
    odd = [d for d in node.decorator_list if _decorator_name(d) not in PURE_DECORATORS]
    if odd:
        return "decorated", f"decorated with {ast.unparse(odd[0])[:80]}"
    if _is_generator(node):
        return "generator", "a generator returns an iterator, not plain data"
    if all(
        isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in node.body
    ):
        return "no_body", "the body is only its docstring (a stub): it always returns None"
    a = node.args
    if not (a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg):
        return "no_parameters", "takes no arguments: there is no input to vary"
    return None


class Module:
    """One parsed file: its candidates, with references assembled from its top-level statements
    (and, once :func:`link` gave it its repository, from the modules it imports there)."""

    def __init__(self, repo: str, path: str, text: str, tree: ast.Module):
        self.repo, self.path, self.text, self.tree = repo, path, text, tree
        self.lines = text.splitlines()
        self.bound = bindings(tree)
        self._names: dict[int, tuple[set[str], set[str]]] = {}
        parts = path[:-3].split("/") if path.endswith(".py") else path.split("/")
        self.is_package = parts[-1] == "__init__"
        self.parts = parts[:-1] if self.is_package else parts
        self.repository: dict[str, Module] = {}

    def _names_of(self, stmt: ast.stmt) -> tuple[set[str], set[str]]:
        """``statement_names``, once per statement: helpers are shared by many candidates."""
        if id(stmt) not in self._names:
            self._names[id(stmt)] = statement_names(stmt)
        return self._names[id(stmt)]

    def candidates(self) -> list[Candidate]:
        found = []
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node):
                found.append(self._candidate(node))
        return found

    def segment(self, node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(self.lines[start - 1 : node.end_lineno])

    def _candidate(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Candidate:
        doc = node.body[0]
        cand = Candidate(
            self.repo,
            self.path,
            node.name,
            node.lineno,
            function=self.segment(node),
            docstring=ast.get_docstring(node) or "",
            node=node,
        )
        cand.stub = "\n".join(self.lines[node.lineno - 1 : doc.end_lineno]) + "\n"
        cand.body = "\n".join(self.lines[doc.end_lineno : node.end_lineno]) + "\n"
        shape = _shape(node)
        if shape:
            return cand.reject(*shape)
        assembly = Assembly(self, node)
        problem = assembly.collect()
        if problem:
            return cand.reject(*problem)
        cand.context = assembly.context()
        if len(cand.reference) > MAX_REFERENCE_CHARS:
            return cand.reject(
                "too_large", f"the reference is {len(cand.reference)} characters, more than {MAX_REFERENCE_CHARS}"
            )
        return cand

    def imported(self, stmt: ast.stmt, name: str) -> tuple[Module, str] | None:
        """(module, name there) when ``name`` comes from ``from <module in this repository> import ...``."""
        if not isinstance(stmt, ast.ImportFrom) or not self.repository:
            return None
        alias = next((a for a in stmt.names if (a.asname or a.name) == name), None)
        if alias is None:
            return None
        if stmt.level:
            if stmt.level - 1 > len(self.parts) - (0 if self.is_package else 1):
                return None
            package = self.parts if self.is_package else self.parts[:-1]
            base = package[: len(package) - (stmt.level - 1)]
            dotted = ".".join(base + ([stmt.module] if stmt.module else []))
        else:
            dotted = stmt.module or ""
        other = self.repository.get(dotted)
        if other is None or other is self or alias.name not in other.bound:
            return None
        return other, alias.name


def link(modules: list[Module]) -> None:
    """Give each module its repository: dotted module name -> module (``src/`` layouts included)."""
    names: dict[str, Module] = {}
    for module in modules:
        names.setdefault(".".join(module.parts), module)
        if module.parts[:1] == ["src"] and len(module.parts) > 1:
            names.setdefault(".".join(module.parts[1:]), module)
    for module in modules:
        module.repository = names


def parse_module(repo: str, path: str, text: str) -> Module | None:
    """The parsed file, or None when it is not valid Python for this interpreter."""
    try:
        return Module(repo, path, text, ast.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
