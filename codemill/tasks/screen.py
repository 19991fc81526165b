"""Static screening: a reference that reaches anything impure or environment-dependent is
quarantined as ``impure`` before it ever runs. docs/tasks.md lists the same names.

The screen reads the assembled reference (the function and the module-level statements it
needs), resolves names through its imports (``from os import environ`` is ``os.environ``,
``import numpy as np`` makes ``np.x`` ``numpy.x``) and flags:

- a module in :data:`SCREENED_MODULES`, or any name under it;
- ``os``/``os.path``/``posixpath``/``ntpath``/``sys``/``io``/``urllib``/``codecs`` names
  outside :data:`ALLOWED` (pure path and URL arithmetic, constants, in-memory buffers):
  ``os.environ``, ``os.getpid``, ``os.path.exists``, ``sys.argv``, ``io.open``,
  ``urllib.request`` and ``codecs.open`` are screened;
- a builtin in :data:`SCREENED_BUILTINS` that the reference does not bind itself (a
  parameter named ``input`` is fine; calling the builtin ``input`` is not);
- attributes in :data:`SCREENED_ATTRIBUTES` (``__globals__``, ``__code__``...) and any
  ``environ``/``getenv``;
- global mutation: a ``global`` statement, or a function that assigns into, deletes from
  or calls a mutating method (:data:`MUTATORS`) on a module-level name it does not bind.

What passes the screen still runs several times in the sandbox; nondeterminism the screen
cannot see (set order under ``PYTHONHASHSEED``) shows there.
"""

from __future__ import annotations

import ast

from codemill.tasks.names import free_names

SCREENED_MODULES = frozenset(
    {
        # randomness, clocks and dates
        "random",
        "secrets",
        "uuid",
        "time",
        "datetime",
        "calendar",
        "zoneinfo",
        "timeit",
        "sched",
        # files and the file system
        "pathlib",
        "shutil",
        "tempfile",
        "glob",
        "fileinput",
        "filecmp",
        "zipfile",
        "tarfile",
        "gzip",
        "shelve",
        "dbm",
        "sqlite3",
        "mmap",
        "fcntl",
        "linecache",
        "logging",
        # network, processes, threads
        "socket",
        "ssl",
        "select",
        "selectors",
        "socketserver",
        "http",
        "ftplib",
        "smtplib",
        "imaplib",
        "poplib",
        "xmlrpc",
        "webbrowser",
        "email",
        "subprocess",
        "multiprocessing",
        "threading",
        "_thread",
        "concurrent",
        "asyncio",
        "signal",
        "pty",
        "tty",
        "termios",
        # the interpreter, the environment and the process
        "ctypes",
        "importlib",
        "builtins",
        "gc",
        "inspect",
        "tracemalloc",
        "resource",
        "atexit",
        "faulthandler",
        "platform",
        "getpass",
        "pwd",
        "grp",
        "locale",
        "site",
        "sysconfig",
        "pdb",
        "code",
        "readline",
        "curses",
        "tkinter",
        "warnings",
    }
)
ALLOWED = frozenset(
    {
        "os.path",
        "os.sep",
        "os.altsep",
        "os.extsep",
        "os.pathsep",
        "os.linesep",
        "os.curdir",
        "os.pardir",
        "os.fspath",
        "os.path.join",
        "os.path.split",
        "os.path.splitext",
        "os.path.basename",
        "os.path.dirname",
        "os.path.normpath",
        "os.path.normcase",
        "os.path.commonprefix",
        "os.path.commonpath",
        "os.path.isabs",
        "os.path.splitdrive",
        "os.path.sep",
        "os.path.extsep",
        "os.path.altsep",
        "os.path.pathsep",
        "os.path.curdir",
        "os.path.pardir",
        "os.PathLike",
        "sys.maxsize",
        "sys.float_info",
        "sys.int_info",
        "sys.maxunicode",
        "io.StringIO",
        "io.BytesIO",
        "urllib.parse",
        "codecs.encode",
        "codecs.decode",
        "codecs.lookup",
        "codecs.getencoder",
        "codecs.getdecoder",
        "codecs.BOM_UTF8",
        "codecs.BOM_UTF16_LE",
        "codecs.BOM_UTF16_BE",
    }
)
# modules screened except for the names in ALLOWED (in-memory buffers, URL arithmetic, codecs without files)
PARTIAL = {
    "os": "os",
    "sys": "sys",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "io": "io",
    "urllib": "urllib",
    "codecs": "codecs",
}
SCREENED_BUILTINS = frozenset(
    {
        "open",
        "input",
        "print",
        "id",
        "hash",
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "__import__",
        "exit",
        "quit",
        "help",
        "copyright",
        "credits",
        "license",
    }
)
SCREENED_ATTRIBUTES = frozenset(
    {
        "__globals__",
        "__builtins__",
        "__code__",
        "__closure__",
        "__subclasses__",
        "__import__",
        "f_globals",
        "f_locals",
        "f_back",
        "environ",
        "getenv",
        "putenv",
    }
)
MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "update",
        "setdefault",
        "popitem",
        "add",
        "discard",
        "sort",
        "reverse",
        "appendleft",
        "extendleft",
        "popleft",
        "rotate",
        "__setitem__",
        "__delitem__",
    }
)


def screened_name(dotted: str) -> bool:
    """Whether a fully qualified name (``os.path.join``) is screened."""
    root, _, rest = dotted.partition(".")
    if root in SCREENED_MODULES:
        return True
    if root not in PARTIAL:
        return False
    name = PARTIAL[root] + ("." + rest if rest else "")
    if name in ("os", "sys", "os.path", "io", "urllib", "codecs"):
        return False  # the module itself; the names used from it are checked where they are used
    # "os.path" is allowed as a module only: os.path.exists is not path arithmetic
    return not any(name == a or name.startswith(a + ".") for a in ALLOWED - {"os.path"})


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Bound name -> the dotted name it stands for."""
    out = {}
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and not stmt.level:
            for a in stmt.names:
                out[a.asname or a.name] = f"{stmt.module}.{a.name}"
    return out


def _chain(node: ast.Attribute) -> tuple[ast.AST, list[str]]:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, attrs[::-1]


class _Screen(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases
        self.found = ""

    def flag(self, why: str) -> None:
        self.found = self.found or why

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if screened_name(a.name):
                self.flag(f"imports {a.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            if screened_name(f"{node.module}.{a.name}"):
                self.flag(f"imports {node.module}.{a.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base, attrs = _chain(node)
        bad = next((a for a in attrs if a in SCREENED_ATTRIBUTES), None)
        if bad:
            self.flag(f"uses .{bad}")
        if isinstance(base, ast.Name) and base.id in self.aliases:
            dotted = ".".join([self.aliases[base.id]] + attrs)
            if screened_name(dotted):
                self.flag(f"uses {dotted}")
            return
        self.visit(base)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases and screened_name(self.aliases[node.id]):
            self.flag(f"uses {self.aliases[node.id]}")

    def visit_Global(self, node: ast.Global) -> None:
        self.flag(f"declares global {', '.join(node.names)}")


def _mutation(func: ast.FunctionDef, data_names: set[str]) -> str:
    """A module-level name this function changes in place ('' when none)."""
    outside = data_names & free_names(func)
    for sub in ast.walk(func):
        targets = []
        if isinstance(sub, (ast.Assign, ast.Delete)):
            targets = sub.targets
        elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
            targets = [sub.target]
        for t in targets:
            root = t
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if root is not t and isinstance(root, ast.Name) and root.id in outside:
                return root.id
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr in MUTATORS
            and isinstance(sub.func.value, ast.Name)
            and sub.func.value.id in outside
        ):
            return sub.func.value.id
    return ""


def screen(reference: str) -> str:
    """Why the reference is impure ('' when it passes the screen)."""
    try:
        tree = ast.parse(reference)
    except (SyntaxError, ValueError, RecursionError):
        return "the reference does not parse"
    check = _Screen(_aliases(tree))
    check.visit(tree)
    if check.found:
        return check.found
    bound, data = set(), set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            bound.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            bound |= names
            data |= names
    for stmt in tree.body:
        used = (
            free_names(stmt)
            if isinstance(stmt, (ast.FunctionDef, ast.ClassDef))
            else {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        )
        builtin = sorted((used & SCREENED_BUILTINS) - bound)
        if builtin:
            return f"calls {builtin[0]}()"
        if isinstance(stmt, ast.FunctionDef):
            changed = _mutation(stmt, data)
            if changed:
                return f"mutates module-level {changed}"
    return ""
