"""Candidates: every top-level function with a docstring in a Python file, found with ``ast``,
and its reference: the function plus the module-level names it needs (imports, constants,
helper functions and classes), from its own module and from the modules of the same
repository it imports them from (:class:`Assembly`).

A candidate that cannot become a task carries its rejection (``reason``, ``detail``):
``async``, ``generator``, ``decorated`` (any decorator but ``functools.lru_cache``/``cache``),
``no_body``, ``no_parameters`` (its shape), ``unresolved`` (a name that is neither a builtin nor bound at
module level, a module imported whole from the repository, or a name two modules define
differently), ``non_stdlib_import`` (the sandbox has the standard library only), ``too_large``.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import sys
from dataclasses import dataclass, field

BUILTINS = frozenset(dir(builtins))
MAX_REFERENCE_CHARS = 20_000
PURE_DECORATORS = frozenset({"lru_cache", "cache"})  # functools' memoizers: same results, only faster
_Def = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
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


def _bindings(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """Module-level name -> the top-level statements that bind it."""
    bound: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        names: list[str] = []
        if isinstance(stmt, _Def):
            names = [stmt.name]
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        for name in names:
            bound.setdefault(name, []).append(stmt)
    return bound


def _walk(node: ast.AST, annotations: bool):
    """``ast.walk``, optionally without the annotation subtrees (lazy under ``from __future__ import annotations``)."""
    todo = [node]
    while todo:
        sub = todo.pop()
        yield sub
        for name, value in ast.iter_fields(sub):
            if not annotations and (name in ("annotation", "returns") and isinstance(
                    sub, (ast.arg, ast.AnnAssign, ast.FunctionDef, ast.AsyncFunctionDef))):
                continue
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend(v for v in value if isinstance(v, ast.AST))


def free_names(node: ast.AST, annotations: bool = True) -> set[str]:
    """Names a definition reads that it does not bind itself (parameters included)."""
    loaded, stored = set(), set()
    for sub in _walk(node, annotations):
        if isinstance(sub, ast.Name):
            (loaded if isinstance(sub.ctx, ast.Load) else stored).add(sub.id)
        elif isinstance(sub, ast.arg):
            stored.add(sub.arg)
        elif isinstance(sub, _Def) and sub is not node:
            stored.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            stored.add(sub.name)
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            loaded.update(sub.names)
    return loaded - stored


def _statement_names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names the statement needs when it runs, names it uses only in annotations)."""
    if isinstance(stmt, _Def):
        hard = free_names(stmt, annotations=False)
        return hard, free_names(stmt) - hard
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        return {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}, set()
    return set(), set()


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
    if all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
           for s in node.body):
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
        self.bound = _bindings(tree)
        self._names: dict[int, tuple[set[str], set[str]]] = {}
        parts = path[:-3].split("/") if path.endswith(".py") else path.split("/")
        self.is_package = parts[-1] == "__init__"
        self.parts = parts[:-1] if self.is_package else parts
        self.repository: dict[str, Module] = {}

    def _names_of(self, stmt: ast.stmt) -> tuple[set[str], set[str]]:
        """``_statement_names``, once per statement: helpers are shared by many candidates."""
        if id(stmt) not in self._names:
            self._names[id(stmt)] = _statement_names(stmt)
        return self._names[id(stmt)]

    def candidates(self) -> list[Candidate]:
        found = []
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node):
                found.append(self._candidate(node))
        return found

    def segment(self, node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(self.lines[start - 1:node.end_lineno])

    def _candidate(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Candidate:
        doc = node.body[0]
        cand = Candidate(self.repo, self.path, node.name, node.lineno, function=self.segment(node),
                         docstring=ast.get_docstring(node) or "", node=node)
        cand.stub = "\n".join(self.lines[node.lineno - 1:doc.end_lineno]) + "\n"
        cand.body = "\n".join(self.lines[doc.end_lineno:node.end_lineno]) + "\n"
        shape = _shape(node)
        if shape:
            return cand.reject(*shape)
        assembly = Assembly(self, node)
        problem = assembly.collect()
        if problem:
            return cand.reject(*problem)
        cand.context = assembly.context()
        if len(cand.reference) > MAX_REFERENCE_CHARS:
            return cand.reject("too_large", f"the reference is {len(cand.reference)} characters, "
                                            f"more than {MAX_REFERENCE_CHARS}")
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
            base = package[:len(package) - (stmt.level - 1)]
            dotted = ".".join(base + ([stmt.module] if stmt.module else []))
        else:
            dotted = stmt.module or ""
        other = self.repository.get(dotted)
        if other is None or other is self or alias.name not in other.bound:
            return None
        return other, alias.name


class Assembly:
    """The top-level statements a function needs, transitively, across the repository's modules.

    A name used only in annotations is taken when it is a standard-library import, and
    otherwise left out: the reference then starts with ``from __future__ import
    annotations``, so the annotation is never evaluated. A name imported from another
    module of the same repository (``from .core import helper``, ``from pkg.util import
    x``) is replaced by its definition there (and what that needs); the modules' statements
    come first, in the order they were reached (deepest first), then this module's."""

    def __init__(self, module: Module, node: ast.stmt):
        self.module, self.node = module, node
        self.needed: dict[tuple[int, int], tuple[Module, ast.stmt]] = {}
        self.uses: dict[int, set[str]] = {}  # statement -> the names it is needed for
        self.aliases: list[str] = []  # "local = name_there" for ``from .m import name_there as local``
        self.order: list[Module] = [module]
        self.lazy = False

    def collect(self) -> tuple[str, str] | None:
        hard, soft = self.module._names_of(self.node)
        todo = [(self.module, n, False) for n in sorted(soft)] + [(self.module, n, True) for n in sorted(hard)]
        seen: set[tuple[int, str, bool]] = set()
        while todo:
            module, name, strict = todo.pop()
            if (id(module), name, strict) in seen or (id(module), name, True) in seen:
                continue
            seen.add((id(module), name, strict))
            problem = self._resolve(module, name, strict, todo)
            if problem:
                return problem
        return self._conflict()

    def _resolve(self, module: Module, name: str, strict: bool, todo: list) -> tuple[str, str] | None:
        stmts = [s for s in module.bound.get(name, []) if s is not self.node]
        if not stmts:
            if name in BUILTINS or (not strict and name not in module.bound):
                self.lazy |= name not in BUILTINS
                return None
            if name in module.bound:  # the function's own name (recursion)
                return None
            return "unresolved", f"name {name!r} is not bound at module level"
        for stmt in stmts:
            problem = _import_problem(stmt, name)
            target = module.imported(stmt, name) if problem else None
            if problem and not target:
                if strict:
                    return problem
                self.lazy = True
                return None
            if target:
                other, there = target
                if other not in self.order:
                    self.order.append(other)
                if there != name:
                    self.aliases.append(f"{name} = {there}")
                todo.append((other, there, strict))
                continue
            if not strict and not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.lazy = True  # an annotation naming a class or constant: left unevaluated
                return None
            self.uses.setdefault(id(stmt), set()).add(name)
            if (id(module), id(stmt)) not in self.needed:
                self.needed[(id(module), id(stmt))] = (module, stmt)
                more_hard, more_soft = module._names_of(stmt)
                todo += [(module, n, False) for n in sorted(more_soft)] + [(module, n, True) for n in sorted(more_hard)]
        return None

    def _conflict(self) -> tuple[str, str] | None:
        """Two modules' statements that bind one name differently cannot share one namespace
        (the same import in both is fine)."""
        owner: dict[str, tuple[str, str]] = {self.node.name: (self.module.path, "the function itself")}
        for module, stmt in self.needed.values():
            for name, what in _binds(module, stmt).items():
                first = owner.setdefault(name, (module.path, what))
                if first[1] != what:
                    return "unresolved", f"name {name!r} is defined in both {first[0]} and {module.path}"
        return None

    def context(self) -> str:
        lines = ["from __future__ import annotations"] if self.lazy else []
        for module in self.order[1:][::-1]:
            stmts = sorted((s for m, s in self.needed.values() if m is module), key=lambda s: s.lineno)
            if stmts:
                lines.append("\n".join([f"# from {module.path}"] + [self._source(module, s) for s in stmts]))
        lines += sorted(set(self.aliases))
        own = sorted((s for m, s in self.needed.values() if m is self.module), key=lambda s: s.lineno)
        return "\n".join(lines + [self._source(self.module, s) for s in own])

    def _source(self, module: Module, stmt: ast.stmt) -> str:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            # only the names the function needs, so an unused ``import os, re`` does not screen it out
            uses = self.uses.get(id(stmt), set())
            kept = [a for a in stmt.names if (a.asname or a.name).split(".")[0] in uses]
            return ast.unparse(type(stmt)(**{**{f: getattr(stmt, f) for f in stmt._fields}, "names": kept}))
        return module.segment(stmt)


def _binds(module: Module, stmt: ast.stmt) -> dict[str, str]:
    """Name -> what binds it: an import's target, else the statement's place."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        prefix = f"{stmt.module}." if isinstance(stmt, ast.ImportFrom) else ""
        return {(a.asname or a.name).split(".")[0]: f"import {prefix}{a.name}" for a in stmt.names}
    place = f"{module.path}:{stmt.lineno}"
    if isinstance(stmt, _Def):
        return {stmt.name: place}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return {n.id: place for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


def link(modules: list[Module]) -> None:
    """Give each module its repository: dotted module name -> module (``src/`` layouts included)."""
    names: dict[str, Module] = {}
    for module in modules:
        names.setdefault(".".join(module.parts), module)
        if module.parts[:1] == ["src"] and len(module.parts) > 1:
            names.setdefault(".".join(module.parts[1:]), module)
    for module in modules:
        module.repository = names


def _import_problem(stmt: ast.stmt, name: str) -> tuple[str, str] | None:
    if isinstance(stmt, ast.ImportFrom):
        if stmt.level:
            return "unresolved", f"{name!r} comes from a relative import (from {'.' * stmt.level}{stmt.module or ''})"
        module = stmt.module or ""
    elif isinstance(stmt, ast.Import):
        module = next((a.name for a in stmt.names if (a.asname or a.name).split(".")[0] == name), "")
    else:
        return None
    if module.split(".")[0] not in sys.stdlib_module_names:
        return "non_stdlib_import", f"{name!r} comes from {module!r}, which is not in the standard library"
    return None


def parse_module(repo: str, path: str, text: str) -> Module | None:
    """The parsed file, or None when it is not valid Python for this interpreter."""
    try:
        return Module(repo, path, text, ast.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
