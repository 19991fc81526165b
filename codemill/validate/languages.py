"""Languages by file name, and the aliases tabular sources use for them.

Language ids are lowercase identifiers (``python``, ``cpp``, ``csharp``...): every later
stage compares against these. A value in a source's language column (The Stack writes
``"Python"``, ``"C++"``) is mapped through :data:`ALIASES`.
"""

from __future__ import annotations

import os
import re

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".pyx": "cython",
    ".pxd": "cython",
    ".pxi": "cython",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cu": "cuda",
    ".cuh": "cuda",
    ".cs": "csharp",
    ".java": "java",
    ".kt": "kotlin",
    ".scala": "scala",
    ".go": "go",
    ".rs": "rust",
    ".swift": "swift",
    ".m": "objective-c",
    ".rb": "ruby",
    ".php": "php",
    ".pl": "perl",
    ".lua": "lua",
    ".r": "r",
    ".jl": "julia",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".ex": "elixir",
    ".erl": "erlang",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".ps1": "powershell",
    ".bat": "batchfile",
    ".sql": "sql",
    ".proto": "protobuf",
    ".cmake": "cmake",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "scss",
    ".xml": "xml",
    ".xsl": "xslt",
    ".xslt": "xslt",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".md": "markdown",
    ".rst": "restructuredtext",
    ".tex": "tex",
}

FILENAMES = {"dockerfile": "dockerfile", "makefile": "makefile", "cmakelists.txt": "cmake"}

KNOWN = frozenset(EXTENSIONS.values()) | frozenset(FILENAMES.values())

# Names other datasets use -> our ids (compared lowercase, spaces removed).
ALIASES = {
    "c++": "cpp",
    "c#": "csharp",
    "objectivec": "objective-c",
    "objective-c": "objective-c",
    "shell": "shell",
    "bash": "shell",
    "sh": "shell",
    "jupyternotebook": "json",
    "yml": "yaml",
    "protocolbuffer": "protobuf",
    "protocolbuffers": "protobuf",
    "rst": "restructuredtext",
    "restructuredtext": "restructuredtext",
    "dockerfile": "dockerfile",
    "makefile": "makefile",
    "js": "javascript",
    "ts": "typescript",
    "py": "python",
    "golang": "go",
}

_SHARED_LIBRARY = re.compile(r"\.so(\.\d+)+$")


def language_of_path(path: str) -> str | None:
    """The language of a file by its name, or None when codemill does not know it."""
    name = os.path.basename(path).lower()
    if name in FILENAMES:
        return FILENAMES[name]
    return EXTENSIONS.get(os.path.splitext(name)[1])


def normalize_language(value: str) -> str:
    """A source's language label as our id (unknown labels come back lowercased)."""
    key = value.strip().lower().replace(" ", "")
    if key in KNOWN:
        return key
    return ALIASES.get(key, key)


def is_binary_name(path: str, binary_extensions: frozenset[str]) -> bool:
    """Files skipped at discovery: binary extensions and versioned shared libraries."""
    name = path.rpartition("/")[2].lower()
    dot = name.rfind(".")
    if dot > 0 and name[dot:] in binary_extensions:
        return True
    return ".so." in name and bool(_SHARED_LIBRARY.search(name))
