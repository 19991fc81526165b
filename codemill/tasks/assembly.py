"""Assembling a reference: the top-level statements a function needs, across the modules of
its repository, as one self-contained source (:class:`Assembly`)."""

from __future__ import annotations

import ast
import sys
from typing import TYPE_CHECKING

from codemill.tasks.names import BUILTINS, DEFS

if TYPE_CHECKING:
    from codemill.tasks.functions import Module


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
    if isinstance(stmt, DEFS):
        return {stmt.name: place}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return {n.id: place for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


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
