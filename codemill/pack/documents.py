"""Repository documents: a repository's files in dependency order, each under its path.

Files of a language family with repository-level treatment (Python, JavaScript/
TypeScript, Java, C/C++, C#, Go) become one document per repository and family: the
family's dependency graph (:mod:`codemill.pack.resolve`) is split into connected
subgraphs and each is ordered with :mod:`codemill.pack.order`, dependencies first.
Every other file is a document of its own.

Each file starts with one comment line holding its path, in the file's own comment
syntax (``# a/b.py``, ``// src/x.ts``, ``<!-- docs/i.md -->``, ``-- q.sql``); formats
that cannot hold a comment (JSON, plain text, unknown languages) get no path line. A file
part always ends with a newline so the next file's path line starts a line.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from codemill.pack import resolve
from codemill.pack.corpus import stable_hash
from codemill.pack.order import dependency_order
from codemill.records import FileRecord

_ALIASES = {
    "c++": "cpp",
    "c#": "csharp",
    "cs": "csharp",
    "js": "javascript",
    "ts": "typescript",
    "golang": "go",
    "py": "python",
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "objective-c": "objc",
    "objective-c++": "objc",
    "vb.net": "vb",
    "visual basic": "vb",
    "emacs lisp": "lisp",
    "common lisp": "lisp",
    "md": "markdown",
    "yml": "yaml",
}

_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cu": "cuda",
    ".cs": "csharp",
    ".go": "go",
    ".rs": "rust",
    ".rb": "ruby",
    ".sh": "shell",
    ".md": "markdown",
    ".html": "html",
    ".xml": "xml",
    ".css": "css",
    ".sql": "sql",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".lua": "lua",
    ".hs": "haskell",
}

# language -> repository-level family (C and C++ share headers; JS and TS import each other)
FAMILIES = {
    "python": "python",
    "javascript": "js",
    "typescript": "js",
    "java": "java",
    "c": "c",
    "cpp": "c",
    "csharp": "csharp",
    "go": "go",
}

_COMMENT_STYLES = {
    "# {}": "python shell yaml toml ruby perl r makefile dockerfile cmake powershell julia elixir nim "
    "tcl coffeescript starlark nix crystal gdscript raku",
    "// {}": "c cpp java javascript typescript csharp go rust kotlin swift scala dart php objc groovy zig "
    "protobuf solidity cuda verilog systemverilog glsl hlsl d fsharp scss less jsonc",
    "/* {} */": "css",
    "<!-- {} -->": "html xml markdown svg vue xslt",
    "-- {}": "sql lua haskell ada elm vhdl purescript agda",
    "; {}": "lisp clojure scheme racket assembly ini",
    "% {}": "erlang tex latex matlab prolog",
    "! {}": "fortran",
    "' {}": "vb",
    "(* {} *)": "ocaml",
}
COMMENT = {lang: style for style, langs in _COMMENT_STYLES.items() for lang in langs.split()}


def language_of(language: str | None, path: str) -> str:
    """Normalized language name: the record's label, else the file extension's."""
    lang = (language or "").strip().lower()
    lang = _ALIASES.get(lang, lang)
    if lang in ("", "unknown", "text") or (lang not in FAMILIES and lang not in COMMENT):
        ext_lang = _EXTENSIONS.get(posixpath.splitext(path)[1].lower())
        return ext_lang or lang or "unknown"
    return lang


def path_comment(path: str, language: str) -> str:
    """The first line of a file in a document ("" for formats without comments)."""
    style = COMMENT.get(language)
    return style.format(path) + "\n" if style else ""


def file_part(path: str, language: str, content: str) -> str:
    return path_comment(path, language) + (content if content.endswith("\n") else content + "\n")


@dataclass(slots=True)
class Document:
    """A unit of text before tokenization: a repository family's ordered files, or one file."""

    repo: str
    language: str
    paths: list[str]
    parts: list[str]  # one per file: path comment + content

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass(slots=True)
class BuildStats:
    files: int = 0
    dependency_edges: int = 0
    cycles_broken: int = 0
    repo_documents: int = 0
    file_documents: int = 0
    families: Counter = field(default_factory=Counter)


def _graph(family: str, files: dict[str, str], repo_files: dict[str, str]) -> resolve.Graph:
    if family == "python":
        return resolve.python_graph(files)
    if family == "js":
        return resolve.js_graph(files, set(repo_files))
    if family == "java":
        return resolve.java_graph(files)
    if family == "c":
        return resolve.c_graph(files, set(repo_files))
    if family == "csharp":
        return resolve.csharp_graph(files)
    return resolve.go_graph(files, repo_files)


def repo_documents(repo: str, records: list[FileRecord], seed: int, stats: BuildStats) -> list[Document]:
    """Documents of one repository: one per language family in dependency order, one per other file."""
    rng = np.random.default_rng([seed, stable_hash(repo)])
    langs = {r.path: language_of(r.language, r.path) for r in records}
    repo_files = {r.path: r.content for r in records}
    by_family: dict[str, dict[str, str]] = defaultdict(dict)
    docs = []
    for r in sorted(records, key=lambda r: r.path):
        family = FAMILIES.get(langs[r.path])
        if family:
            by_family[family][r.path] = r.content
        else:
            docs.append(Document(repo, langs[r.path], [r.path], [file_part(r.path, langs[r.path], r.content)]))
            stats.file_documents += 1
    for family in sorted(by_family):
        files = by_family[family]
        graph = _graph(family, files, repo_files)
        ordered, broken = dependency_order(graph, rng)
        paths = [p for group in ordered for p in group]
        language = Counter(langs[p] for p in paths).most_common(1)[0][0]
        docs.append(Document(repo, language, paths, [file_part(p, langs[p], files[p]) for p in paths]))
        stats.dependency_edges += sum(len(d) for d in graph.values())
        stats.cycles_broken += broken
        stats.repo_documents += 1
        stats.families[family] += len(paths)
    stats.files += len(records)
    return docs
