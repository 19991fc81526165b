"""Which names a piece of Python reads and binds: the name analysis behind references.

Annotations are told apart from the rest (``free_names(node, annotations=False)``): under
``from __future__ import annotations`` they are never evaluated, so a reference does not
need the names used only there.
"""

from __future__ import annotations

import ast
import builtins

BUILTINS = frozenset(dir(builtins))
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def bindings(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """Module-level name -> the top-level statements that bind it."""
    bound: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        names: list[str] = []
        if isinstance(stmt, DEFS):
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
            if not annotations and (
                name in ("annotation", "returns")
                and isinstance(sub, (ast.arg, ast.AnnAssign, ast.FunctionDef, ast.AsyncFunctionDef))
            ):
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
        elif isinstance(sub, DEFS) and sub is not node:
            stored.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            stored.add(sub.name)
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            loaded.update(sub.names)
    return loaded - stored


def statement_names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names the statement needs when it runs, names it uses only in annotations)."""
    if isinstance(stmt, DEFS):
        hard = free_names(stmt, annotations=False)
        return hard, free_names(stmt) - hard
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        return {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}, set()
    return set(), set()
