"""Every path the folder and site-packages walks meet ends kept, quarantined with a reason,
or in a counted skip: folders that are links or cannot be listed, and files beside the
repositories, never vanish.

Root reads a mode-000 folder anyway (DAC override), so those cases run in a forked
child that has switched to uid/gid 65534 (``os.setuid``); they are skipped, with the
reason, where the tests do not run as root.
"""

import json
import os
import shutil
import tempfile

import pytest
from validate_corpus import rows, run_all

from codemill.validate import ValidateConfig
from codemill.validate.sources import SourceInfo, read_source

NOBODY = 65534
CODE = "def value(x):\n    return x + 1\n"


def _write(path, text=CODE):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_folder_links_are_quarantined_or_counted_never_dropped(tmp_path):
    source = tmp_path / "repos"
    _write(str(source / "r1" / "pkg" / "a.py"))
    _write(str(source / "r2" / "lib" / "b.py"))
    _write(str(tmp_path / "elsewhere" / "c.py"))
    _write(str(source / "README.md"), "# the repositories\n")  # beside them, in none
    os.symlink("pkg", source / "r1" / "pkg_alias")  # a folder inside the repository: walked at its path
    os.symlink("../../r2/lib", source / "r1" / "pkg" / "vendored")  # into another repository
    os.symlink(tmp_path / "elsewhere", source / "r1" / "outside")
    os.symlink(tmp_path / "elsewhere", source / "r3")  # a repository folder that is a link
    out = str(tmp_path / "out")
    stats = run_all(str(source), out)
    kept = {f"{r['repo']}/{r['path']}" for r in rows(out, "files")}
    held = {f"{r['repo']}/{r['path']}": r for r in rows(out, "quarantine")}
    assert kept == {"r1/pkg/a.py", "r2/lib/b.py"}
    assert {p: r["reason"] for p, r in held.items()} == {
        "r1/pkg/vendored/": "symlink_outside_repo",
        "r1/outside/": "symlink_outside_repo",
        "r3/./": "symlink_outside_repo",
    }
    assert held["r1/pkg/vendored/"]["detail"] == (
        f"{source}/r1/pkg/vendored is a symbolic link to the folder {source}/r2/lib (outside the repository "
        f"{source}/r1); not followed"
    )
    assert "a repository folder must not be a link" in held["r3/./"]["detail"]
    assert stats["skipped_files"] == {"dir_symlink_inside_repo": 1}
    assert stats["selection"]["files_beside_repos"] == 1
    assert stats["input_records"] == 5 == stats["kept"] + stats["quarantined"] and stats["invariant_ok"]


# ---------------------------------------------------------------------------- as an ordinary user


def _as_nobody(fn) -> dict:
    """``fn()``'s JSON-able result, computed in a forked child running as uid/gid 65534."""
    if os.geteuid() != 0:
        pytest.skip(
            "switching to uid 65534 needs root (and as another user, mode 000 is already enforced "
            "only for that user's own files)"
        )
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, run, report, never return into pytest
        status = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = json.dumps({"ok": fn()})
        except BaseException as e:  # noqa: BLE001 - the parent reports it
            payload, status = json.dumps({"error": f"{type(e).__name__}: {e}"}), 1
        with os.fdopen(write, "w") as f:
            f.write(payload)
        os._exit(status)
    os.close(write)
    with os.fdopen(read) as f:
        payload = json.loads(f.read() or '{"error": "no output"}')
    os.waitpid(pid, 0)
    assert "error" not in payload, payload["error"]
    return payload["ok"]


@pytest.fixture
def world_dir():
    """A folder uid 65534 can reach (pytest's tmp_path sits under a root-only folder)."""
    path = tempfile.mkdtemp(prefix="codemill-walk-", dir="/tmp")
    os.chmod(path, 0o777)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path)


def test_a_named_pipe_or_socket_is_quarantined_not_opened(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: the walk must not open one."""
    import socket

    source = tmp_path / "repos"
    _write(str(source / "r1" / "a.py"))
    os.mkfifo(source / "r1" / "pipe.py")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(source / "r1" / "sock.py"))
    os.symlink("pipe.py", source / "r1" / "link_to_pipe.py")  # a link inside the repository to the FIFO
    out = str(tmp_path / "out")
    try:
        stats = run_all(str(source), out)
    finally:
        sock.close()
    held = {r["path"]: r for r in rows(out, "quarantine")}
    assert {p: r["reason"] for p, r in held.items()} == {
        "pipe.py": "unreadable",
        "sock.py": "unreadable",
        "link_to_pipe.py": "unreadable",
    }
    assert "is a named pipe (FIFO), not a regular file; not read" in held["pipe.py"]["detail"]
    assert "is a socket, not a regular file; not read" in held["sock.py"]["detail"]
    assert [r["path"] for r in rows(out, "files")] == ["a.py"]
    assert stats["input_records"] == 4 == stats["kept"] + stats["quarantined"] and stats["invariant_ok"]


def test_an_unreadable_folder_is_quarantined_as_an_ordinary_user(world_dir):
    source = os.path.join(world_dir, "repos")
    _write(os.path.join(source, "r1", "ok.py"))
    _write(os.path.join(source, "r1", "private", "hidden.py"))
    _write(os.path.join(source, "r1", "private", "deeper", "more.py"))
    _write(os.path.join(source, "r2", "x.py"))
    out = os.path.join(world_dir, "out")
    os.makedirs(out, mode=0o777)
    for dirpath, dirnames, filenames in os.walk(world_dir):
        for name in dirnames + filenames:
            os.chmod(os.path.join(dirpath, name), 0o777 if name in dirnames else 0o644)
    os.chmod(os.path.join(source, "r1", "private"), 0o000)
    os.chmod(os.path.join(source, "r2"), 0o000)  # a whole repository folder
    run_all(source, os.path.join(world_dir, "warm"))  # as root: loads every module the child needs

    stats = _as_nobody(lambda: run_all(source, out))
    held = {f"{r['repo']}/{r['path']}": r for r in rows(out, "quarantine")}
    assert {f"{r['repo']}/{r['path']}" for r in rows(out, "files")} == {"r1/ok.py"}
    assert {p: r["reason"] for p, r in held.items()} == {"r1/private/": "unreadable", "r2/./": "unreadable"}
    assert held["r1/private/"]["detail"] == (
        f"{source}/r1/private: cannot list the folder: Permission denied; none of its files can be read"
    )
    assert stats["input_records"] == 3 == stats["kept"] + stats["quarantined"] and stats["invariant_ok"]


def test_an_unreadable_distribution_is_quarantined_as_an_ordinary_user(world_dir):
    site = os.path.join(world_dir, "site")
    for name, version in (("good", "1.0"), ("locked", "2.0")):
        dist = os.path.join(site, f"{name}-{version}.dist-info")
        _write(os.path.join(site, name, "__init__.py"))
        _write(os.path.join(site, name, "nosize.py"))
        _write(os.path.join(dist, "METADATA"), f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        _write(os.path.join(dist, "RECORD"), f"{name}/__init__.py,sha256=x,{len(CODE)}\n{name}/nosize.py,,\n")
    for dirpath, dirnames, filenames in os.walk(world_dir):
        for name in dirnames + filenames:
            os.chmod(os.path.join(dirpath, name), 0o755 if name in dirnames else 0o644)
    os.chmod(os.path.join(site, "locked-2.0.dist-info"), 0o000)
    os.chmod(os.path.join(site, "good"), 0o000)  # listed by RECORD, but no file in it can be read
    config = ValidateConfig(site_packages=[site])
    list(read_source("site-packages", config, 0, 1, SourceInfo()))  # warm the imports as root

    def outcomes():
        return [
            (c.repo, c.path, c.problem and c.problem[0])
            for c in read_source("site-packages", config, 0, 1, SourceInfo())
        ]

    assert sorted(map(tuple, _as_nobody(outcomes))) == [
        ("good==1.0", "good/__init__.py", "unreadable"),
        ("good==1.0", "good/nosize.py", "unreadable"),
        ("locked==2.0", "locked-2.0.dist-info/RECORD", "unreadable"),
    ]
