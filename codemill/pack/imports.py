"""Regex parsers for in-repository dependencies, one per language family.

Like DeepSeek-Coder we parse with regular expressions, not compilers: a parser returns
what a file *names* (modules, relative paths, classes, headers, namespaces, package
paths) and :mod:`codemill.pack.resolve` maps those names to files of the repository.
Names that do not resolve (the standard library, third-party packages) are ignored
there. Matches inside comments or strings can produce false edges; ordering tolerates
them (they only change which file comes first), so we keep the parsers simple.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------- Python

# matched at the start of each line that contains "import": a plain substring search finds
# those lines about ten times faster than a multi-line regex scans every position
_IMPORT_WORD = re.compile("import")
_PY_IMPORT = re.compile(r"[ \t]*import[ \t]+([\w. \t,]+)")
_PY_FROM = re.compile(r"[ \t]*from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)")
_AS = re.compile(r"\s+as\s+\w+\s*$")


@dataclass(frozen=True, slots=True)
class PyImport:
    """``from <level dots><module> import <names>``; ``import a.b`` has level 0, no names."""

    level: int
    module: str
    names: tuple[str, ...] = ()


def _names(clause: str) -> list[str]:
    clause = clause.strip().strip("()").replace("\\\n", " ")
    out = []
    for part in clause.split(","):
        name = _AS.sub("", part.strip()).strip()
        if name and name != "*":
            out.append(name)
    return out


def _import_lines(text: str):
    """Start offsets of the lines that contain the word "import", in order."""
    last = -1
    for m in _IMPORT_WORD.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1
        if start != last:
            last = start
            yield start


def python_imports(text: str) -> list[PyImport]:
    found = []
    for start in _import_lines(text):
        m = _PY_IMPORT.match(text, start)
        if m:
            found.extend(PyImport(0, name) for name in _names(m.group(1)) if " " not in name)
            continue
        m = _PY_FROM.match(text, start)
        if m and (m.group(1) or m.group(2)):
            names = tuple(n for n in _names(m.group(3)) if re.fullmatch(r"\w+", n))
            found.append(PyImport(len(m.group(1)), m.group(2), names))
    return found


# ---------------------------------------------------------------------------- JavaScript / TypeScript

_JS_PATTERNS = [
    # import x from './a'; import {a, b} from "./b"; import type {T} from './t'; import './c'
    re.compile(r"\bimport\s+(?:type\s+)?(?:[\w*$\s{},]*?\s*from\s*)?['\"]([^'\"\n]+)['\"]"),
    # export * from './a'; export {a as b} from './b'
    re.compile(r"\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['\"]([^'\"\n]+)['\"]"),
    # require('./a'); import('./b')
    re.compile(r"\b(?:require|import)\s*\(\s*['\"]([^'\"\n]+)['\"]\s*\)"),
]


def js_imports(text: str) -> list[str]:
    """Relative module specifiers (``./x``, ``../y``); bare package names are not the repo's."""
    specs = []
    for pattern in _JS_PATTERNS:
        specs.extend(m.group(1) for m in pattern.finditer(text))
    return [s for s in specs if s.startswith(("./", "../")) or s in (".", "..")]


# ---------------------------------------------------------------------------- Java

_JAVA_IMPORT = re.compile(r"^[ \t]*import[ \t]+(static[ \t]+)?([\w.]+?)(\.\*)?[ \t]*;", re.M)


@dataclass(frozen=True, slots=True)
class JavaImport:
    name: str  # a.b.C, or the package a.b for a wildcard
    wildcard: bool = False
    static: bool = False


def java_imports(text: str) -> list[JavaImport]:
    return [JavaImport(m.group(2), bool(m.group(3)), bool(m.group(1))) for m in _JAVA_IMPORT.finditer(text)]


# ---------------------------------------------------------------------------- C / C++

_C_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)


def c_includes(text: str) -> list[str]:
    """Quoted includes only: ``<...>`` names system and third-party headers."""
    return _C_INCLUDE.findall(text)


# ---------------------------------------------------------------------------- C#

_CS_USING = re.compile(
    r"^[ \t]*(?:global[ \t]+)?using[ \t]+(?:static[ \t]+)?(?:\w+[ \t]*=[ \t]*)?([\w.]+)[ \t]*;", re.M
)
_CS_NAMESPACE = re.compile(r"^[ \t]*namespace[ \t]+([\w.]+)", re.M)


def csharp_usings(text: str) -> list[str]:
    return _CS_USING.findall(text)


def csharp_namespaces(text: str) -> list[str]:
    """Namespaces a file declares (block-scoped or file-scoped ``namespace A.B;``)."""
    return _CS_NAMESPACE.findall(text)


# ---------------------------------------------------------------------------- Go

_GO_SINGLE = re.compile(r'^[ \t]*import[ \t]+(?:[\w.]+[ \t]+)?"([^"\n]+)"', re.M)
_GO_BLOCK = re.compile(r"^[ \t]*import[ \t]*\(([^)]*)\)", re.M)
_GO_SPEC = re.compile(r'^[ \t]*(?:[\w.]+[ \t]+)?"([^"\n]+)"', re.M)
_GO_MODULE = re.compile(r"^[ \t]*module[ \t]+(\S+)", re.M)


def go_imports(text: str) -> list[str]:
    found = _GO_SINGLE.findall(text)
    for block in _GO_BLOCK.findall(text):
        found.extend(_GO_SPEC.findall(block))
    return found


def go_module(go_mod: str) -> str | None:
    """The module path a ``go.mod`` declares."""
    m = _GO_MODULE.search(go_mod)
    return m.group(1).strip('"') if m else None
