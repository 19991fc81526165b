"""Map what a file imports to files of the same repository: the dependency graph.

One function per language family takes ``{path: content}`` of the family's files (and
the whole repository, where a family needs another file, like Go's ``go.mod``) and
returns ``{path: set of paths it depends on}``. Self-edges and names outside the
repository are dropped.

Python resolves modules the way the interpreter would with each source root on
``sys.path``: a source root is the repository root or a folder holding a top-level
package (``src/``), and a module's name is its path below it; a script outside any
package sees its own folder first. Dotted names that do not resolve that way fall back
to a path-suffix match (namespace packages without ``__init__.py``).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable

from codemill.pack import imports

Graph = dict[str, set[str]]


def _dir(path: str) -> str:
    return posixpath.dirname(path)


def _suffix_index(paths, key: Callable[[str], str]) -> dict[str, list[str]]:
    """Every trailing run of path components -> the paths that end with it (shortest first)."""
    index: dict[str, list[str]] = defaultdict(list)
    for p in sorted(paths, key=lambda p: (p.count("/"), p)):
        parts = key(p).split("/")
        for i in range(len(parts)):
            index["/".join(parts[i:])].append(p)
    return index


# ---------------------------------------------------------------------------- Python


def _python_modules(paths: set[str]) -> tuple[set[str], dict[str, str], dict[str, list[str]]]:
    """(package folders, module name -> path from source roots, path-suffix index of modules).

    A source root is the repository root or a folder holding a top-level package (``src/``);
    modules in other folders (``tools/json.py``) are scripts, found from their own folder.
    """
    packages = {_dir(p) for p in paths if posixpath.basename(p) in ("__init__.py", "__init__.pyi")}
    roots = {""} | {_dir(p) for p in packages if _dir(p) not in packages}
    modules: dict[str, str] = {}
    for p in sorted(paths, key=lambda p: (p.count("/"), p)):
        stem = posixpath.splitext(p)[0]
        if posixpath.basename(stem) == "__init__":
            stem = _dir(stem)
        parts = stem.split("/")
        start = len(parts) - 1
        while start > 0 and "/".join(parts[:start]) in packages:  # climb while inside a package
            start -= 1
        if "/".join(parts[:start]) in roots and parts[start:] != [""]:
            modules.setdefault(".".join(parts[start:]), p)
    suffixes = _suffix_index(paths, lambda p: posixpath.splitext(p)[0].removesuffix("/__init__"))
    return packages, modules, suffixes


def python_graph(files: dict[str, str]) -> Graph:
    paths = set(files)
    packages, modules, suffixes = _python_modules(paths)

    def find_path(base: str) -> str | None:
        for cand in (base + ".py", base + "/__init__.py", base + ".pyi", base + "/__init__.pyi"):
            if cand in paths:
                return cand
        return None

    def find(dotted: str, folder: str) -> str | None:
        """The deepest module of ``a.b.c`` in the repository (importing a.b.c runs a and a.b)."""
        while dotted:
            if folder not in packages:  # a script's own folder comes first on sys.path
                local = find_path(posixpath.join(folder, *dotted.split(".")))
                if local:
                    return local
            if dotted in modules:
                return modules[dotted]
            hits = suffixes.get(dotted.replace(".", "/"), [])
            if hits and "." in dotted:  # namespace packages, unusual roots
                return hits[0]
            dotted = dotted.rpartition(".")[0]
        return None

    graph: Graph = {}
    for path, text in files.items():
        deps: set[str] = set()
        for imp in imports.python_imports(text):
            if imp.level == 0:
                found = [find(f"{imp.module}.{n}", _dir(path)) for n in imp.names] or [find(imp.module, _dir(path))]
            else:
                base = _dir(path)  # the package holding `path` (also for __init__.py)
                for _ in range(imp.level - 1):
                    base = _dir(base)
                target = posixpath.join(base, *imp.module.split(".")) if imp.module else base
                found = [find_path(posixpath.join(target, n)) for n in imp.names]
                if not all(found) or not imp.names:  # names that are not submodules live in target
                    found.append(find_path(target))
            deps.update(t for t in found if t)
        graph[path] = deps - {path}
    return graph


# ---------------------------------------------------------------------------- JavaScript / TypeScript

_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".vue", ".svelte")


def js_graph(files: dict[str, str], repo_paths: set[str]) -> Graph:
    """Relative specifiers: exact file, then with an extension, then ``dir/index.*``."""
    graph: Graph = {}
    for path, text in files.items():
        deps = set()
        for spec in imports.js_imports(text):
            base = posixpath.normpath(posixpath.join(_dir(path), spec))
            stem = base.rsplit(".", 1)[0] if base.endswith((".js", ".jsx", ".mjs", ".cjs")) else base
            candidates = [base] + [stem + e for e in _JS_EXTENSIONS] + [base + "/index" + e for e in _JS_EXTENSIONS]
            hit = next((c for c in candidates if c in repo_paths), None)
            if hit:
                deps.add(hit)
        graph[path] = deps - {path}
    return graph


# ---------------------------------------------------------------------------- Java


def java_graph(files: dict[str, str]) -> Graph:
    """``import a.b.C`` -> a file ending in ``a/b/C.java`` (any source root); ``a.b.*`` -> the package."""
    classes = _suffix_index(files, lambda p: p.removesuffix(".java"))
    packages = _suffix_index({_dir(p) for p in files}, lambda d: d)
    by_dir: dict[str, list[str]] = defaultdict(list)
    for p in sorted(files):
        by_dir[_dir(p)].append(p)
    graph: Graph = {}
    for path, text in files.items():
        deps = set()
        for imp in imports.java_imports(text):
            parts = imp.name.split(".")
            if imp.wildcard and packages.get("/".join(parts)):
                deps.update(by_dir[packages["/".join(parts)][0]])
                continue
            while len(parts) > 1:  # a.b.C.Inner or a static member: drop names until a class file matches
                hits = classes.get("/".join(parts))
                if hits:
                    deps.add(hits[0])
                    break
                parts = parts[:-1]
        graph[path] = deps - {path}
    return graph


# ---------------------------------------------------------------------------- C / C++


def c_graph(files: dict[str, str], repo_paths: set[str]) -> Graph:
    """``#include "x.h"``: next to the includer first, then any include root (path suffix)."""
    headers = _suffix_index(repo_paths, lambda p: p)
    graph: Graph = {}
    for path, text in files.items():
        deps = set()
        for inc in imports.c_includes(text):
            local = posixpath.normpath(posixpath.join(_dir(path), inc))
            if local in repo_paths:
                deps.add(local)
            elif not inc.startswith("../") and headers.get(posixpath.normpath(inc)):
                deps.add(headers[posixpath.normpath(inc)][0])
        graph[path] = deps - {path}
    return graph


# ---------------------------------------------------------------------------- C#


def csharp_graph(files: dict[str, str]) -> Graph:
    """``using A.B;`` -> every file declaring ``namespace A.B`` (``using static A.B.C`` -> ``A.B``)."""
    declared: dict[str, set[str]] = defaultdict(set)
    for path, text in files.items():
        for ns in imports.csharp_namespaces(text):
            declared[ns].add(path)
    graph: Graph = {}
    for path, text in files.items():
        deps = set()
        for name in imports.csharp_usings(text):
            while name and name not in declared:
                name = name.rpartition(".")[0]
            deps.update(declared.get(name, ()))
        graph[path] = deps - {path}
    return graph


# ---------------------------------------------------------------------------- Go


def go_graph(files: dict[str, str], repo_files: dict[str, str]) -> Graph:
    """Imports inside the module (``go.mod``'s path + directory); without a go.mod, the
    repository directory that the import path ends with."""
    by_dir: dict[str, list[str]] = defaultdict(list)
    for p in sorted(files):
        if not p.endswith("_test.go"):
            by_dir[_dir(p)].append(p)
    modules = []
    for p in sorted(repo_files):
        if posixpath.basename(p) == "go.mod" and imports.go_module(repo_files[p]):
            modules.append((imports.go_module(repo_files[p]), _dir(p)))
    graph: Graph = {}
    for path, text in files.items():
        deps = set()
        for imp in imports.go_imports(text):
            deps.update(by_dir.get(_go_dir(imp, modules, by_dir), ()))
        graph[path] = deps - {path}
    return graph


def _go_dir(imp: str, modules: list[tuple[str, str]], by_dir: dict[str, list[str]]) -> str | None:
    for module, root in modules:
        if imp == module or imp.startswith(module + "/"):
            return posixpath.normpath(posixpath.join(root, imp[len(module) + 1 :])) if imp != module else root
    if modules:  # the module path is known: anything else is another module
        return None
    matches = [d for d in by_dir if d and (imp == d or imp.endswith("/" + d))]
    return max(matches, key=len) if matches else None
