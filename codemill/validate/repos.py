"""Repository-shaped sources: installed distributions, and folders of repositories.

Both are listed first (names and sizes only), then picked deterministically: name
filters, a per-repository byte cap that skips giant distributions, then the first
``max_repos`` by id. Files that are never read (binary extensions, ``.git``,
``node_modules``, packaging metadata) are counted by why, not quarantined: they are not
source files of the repository, the way ``.git`` is not.

Files that are listed but cannot be used are records, quarantined with a reason: a
symbolic link whose target lies outside its repository (``symlink_outside_repo``: never
followed, so nothing from elsewhere on the machine is read as the repository's), and a
file that cannot be stat'ed or read, such as a broken link, or that is not a regular file
(a FIFO, a socket, a device: never opened, since reading a FIFO blocks) (``unreadable``).
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
import stat
import sysconfig
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import HeaderParser

from codemill import io
from codemill.stage import InputError
from codemill.validate.config import ValidateConfig
from codemill.validate.languages import is_binary_name
from codemill.validate.sources import Candidate


@dataclass(slots=True)
class RepoFile:
    url: str
    path: str  # inside the repository, with forward slashes
    size: int | None  # None where the listing does not say (S3 folders)
    problem: tuple[str, str] | None = None  # (reason, detail) found while listing: never read


@dataclass
class Repo:
    id: str  # "name==version" for distributions, the folder name for folders
    files: list[RepoFile]
    license: str | None = None
    skipped: Counter = field(default_factory=Counter)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _skip_reason(path: str, skip_dirs: frozenset[str], binary_exts: frozenset[str]) -> str | None:
    parts = path.split("/")
    if any(p in skip_dirs for p in parts[:-1]):
        return "skipped_dir"
    if is_binary_name(parts[-1], binary_exts):
        return "binary_name"
    return None


def _skip_sets(config: ValidateConfig) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(config.skip_dirs), frozenset(e.lower() for e in config.binary_extensions)


# ---------------------------------------------------------------------------- site-packages


def default_site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _license(meta) -> str | None:
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100:
        return text
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or None


def _distribution(folder: str, dist_info: str, skip_dirs: frozenset[str], binary_exts: frozenset[str]) -> Repo | None:
    record_url = os.path.join(folder, dist_info, "RECORD")
    meta_url = os.path.join(folder, dist_info, "METADATA")
    try:
        for url in (record_url, meta_url):
            os.stat(url)
        meta = HeaderParser().parsestr(io.read_bytes(meta_url).decode("utf-8", "replace"))
        record = io.read_text(record_url)
    except (FileNotFoundError, NotADirectoryError):
        return None  # not an installed distribution with a file list
    except (OSError, io.StorageError, UnicodeDecodeError) as e:
        # a distribution whose file list cannot be read: one quarantined record says so
        base, _, version = dist_info.removesuffix(".dist-info").partition("-")
        detail = f"{record_url}: cannot read the distribution's file list ({getattr(e, 'strerror', None) or e})"
        return Repo(
            id=f"{_normalize(base)}=={version or '0'}",
            files=[RepoFile(record_url, f"{dist_info}/RECORD", None, ("unreadable", detail))],
        )
    repo = Repo(
        id=f"{_normalize(meta.get('Name') or dist_info.split('-')[0])}=={meta.get('Version', '0')}",
        files=[],
        license=_license(meta),
    )
    for row in csv.reader(record.splitlines()):
        path = row[0].replace("\\", "/") if row else ""
        if not path:
            continue
        if path.startswith("../") or os.path.isabs(path):  # console scripts in bin/, headers
            repo.skipped["outside_site_packages"] += 1
            continue
        if path.split("/")[0].endswith((".dist-info", ".data")):
            repo.skipped["packaging_metadata"] += 1
            continue
        skip = _skip_reason(path, skip_dirs, binary_exts)
        if skip:
            repo.skipped[skip] += 1
            continue
        full = os.path.join(folder, path)
        # RECORD's size saves a stat per file; a file missing on disk fails as "unreadable".
        size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
        if size is None:
            try:
                size = os.path.getsize(full)
            except FileNotFoundError:
                repo.skipped["missing_on_disk"] += 1
                continue
            except OSError as e:  # listed and present, but its folder denies access
                repo.files.append(RepoFile(full, path, None, ("unreadable", f"{full}: cannot stat: {e.strerror or e}")))
                continue
        repo.files.append(RepoFile(full, path, size))
    return repo


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def site_packages_repos(config: ValidateConfig) -> list[Repo]:
    """Every installed distribution with a RECORD, first folder wins on duplicate ids."""
    folders = config.site_packages or default_site_packages()
    skip_dirs, binary_exts = _skip_sets(config)
    repos: dict[str, Repo] = {}
    for folder in folders:
        if not os.path.isdir(folder):
            raise InputError(f"site-packages folder {folder} does not exist")
        for entry in sorted(os.listdir(folder)):
            if entry.endswith(".dist-info"):
                repo = _distribution(folder, entry, skip_dirs, binary_exts)
                if repo is not None and repo.id not in repos:
                    repos[repo.id] = repo
    if not repos:
        raise InputError(f"site-packages: no installed distribution with a .dist-info/RECORD in {folders}")
    return list(repos.values())


# ---------------------------------------------------------------------------- folders


def folder_repos(source: str, config: ValidateConfig) -> tuple[list[Repo], int]:
    """Each subfolder of ``source`` is a repository; returns them and how many files lie
    at the top level, beside the repositories (they belong to none and are not read)."""
    if not io.is_s3(source) and not os.path.isdir(io.local_path(source)):
        raise InputError(f"{source}: no such folder (and not site-packages or a JSONL/Parquet file or glob)")
    root = (source if io.is_s3(source) else io.local_path(source)).rstrip("/") + "/"
    skip_dirs, binary_exts = _skip_sets(config)
    entries = [(url, FILE, "") for url in io.list_files(source)] if io.is_s3(source) else _walk_local(root)
    repos: dict[str, Repo] = {}
    beside = 0
    for url, kind, error in entries:
        name, _, path = url[len(root) :].replace(os.sep, "/").partition("/")
        if not path and kind == FILE:
            beside += 1  # a file beside the repositories, not inside one
            continue
        repo = repos.setdefault(name, Repo(id=name, files=[]))
        skip = _skip_reason(path + ("/" if kind != FILE else ""), skip_dirs, binary_exts)
        if skip:
            repo.skipped[skip] += 1
        elif kind == FILE:
            repo.files.append(
                RepoFile(url, path, None) if io.is_s3(url) else _local_file(url, path, os.path.join(root, name))
            )
        else:
            entry = _folder_entry(url, path, os.path.join(root, name), kind, error)
            if entry is None:
                repo.skipped["dir_symlink_inside_repo"] += 1
            else:
                repo.files.append(entry)
    if not repos:
        raise InputError(f"{source}: no repository subfolders with files found")
    return list(repos.values()), beside


# What a local walk meets: files, folders that are symbolic links (never followed), and
# folders that cannot be listed. os.walk would drop the last two without a word.
FILE, DIR_LINK, UNLISTABLE = "file", "dir_link", "unlistable"


def _walk_local(root: str) -> list[tuple[str, str, str]]:
    """(path, kind, error) of every entry under ``root``, sorted by path."""
    found: list[tuple[str, str, str]] = []

    def failed(e: OSError) -> None:
        if os.path.normpath(e.filename) == os.path.normpath(root):
            raise InputError(f"{root}: cannot list the source folder: {e.strerror or e}")
        found.append((e.filename, UNLISTABLE, e.strerror or str(e)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        found.extend((os.path.join(dirpath, n), FILE, "") for n in filenames)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        found.extend((os.path.join(dirpath, d), DIR_LINK, "") for d in links)
        dirnames[:] = sorted(set(dirnames) - set(links))
    return sorted(found)


def _folder_entry(url: str, path: str, repo_root: str, kind: str, error: str) -> RepoFile | None:
    """A folder met by the walk that yields no files: a quarantined entry, or None for a
    link to a folder inside the repository (its files are walked at their own path)."""
    local = io.local_path(url)
    shown = path or "."  # the repository folder itself
    if kind == UNLISTABLE:
        return RepoFile(
            url,
            shown + "/",
            None,
            ("unreadable", f"{local}: cannot list the folder: {error}; none of its files can be read"),
        )
    target = os.path.realpath(local)
    if path and _inside(target, os.path.realpath(repo_root)):
        return None
    where = f"outside the repository {repo_root}" if path else "a repository folder must not be a link"
    return RepoFile(
        url,
        shown + "/",
        None,
        ("symlink_outside_repo", f"{local} is a symbolic link to the folder {target} ({where}); not followed"),
    )


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _local_file(url: str, path: str, repo_root: str) -> RepoFile:
    """A listed local file; a link out of its repository or a failing stat becomes its problem."""
    local = io.local_path(url)
    if os.path.islink(local):
        target = os.path.realpath(local)
        if not _inside(target, os.path.realpath(repo_root)):
            return RepoFile(
                url,
                path,
                None,
                (
                    "symlink_outside_repo",
                    f"{local} is a symbolic link to {target}, outside the repository {repo_root}; not followed",
                ),
            )
    try:
        info = os.stat(local)
    except OSError as e:
        return RepoFile(url, path, None, ("unreadable", f"{local}: cannot stat: {e.strerror or e}"))
    if not stat.S_ISREG(info.st_mode):  # opening a FIFO blocks until a writer comes: never open one
        kind = _SPECIAL.get(stat.S_IFMT(info.st_mode), "special file")
        return RepoFile(url, path, None, ("unreadable", f"{local}: is a {kind}, not a regular file; not read"))
    return RepoFile(url, path, info.st_size)


_SPECIAL = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


# ---------------------------------------------------------------------------- picking and reading


def _matches(repo: Repo, patterns: list[str]) -> bool:
    name = repo.id.split("==")[0]
    return any(fnmatch.fnmatchcase(repo.id, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def select(repos: list[Repo], config: ValidateConfig, source: str) -> tuple[list[Repo], dict]:
    """The repositories to read, and a summary of how they were picked."""
    matching = [
        r
        for r in repos
        if (not config.include_repos or _matches(r, config.include_repos)) and not _matches(r, config.exclude_repos)
    ]
    too_big = {r.id for r in matching if config.max_repo_bytes and r.size > config.max_repo_bytes}
    over = sorted(too_big)
    fitting = sorted((r for r in matching if r.id not in too_big), key=lambda r: r.id)
    picked = fitting[: config.max_repos] if config.max_repos > 0 else fitting
    if not picked:
        raise InputError(
            f"{source}: no repository left to read: {len(repos)} found, {len(matching)} match the "
            f"name filters, {len(over)} are over max_repo_bytes={config.max_repo_bytes}"
        )
    selection = {
        "repos_found": len(repos),
        "repos_matching": len(matching),
        "repos_over_byte_cap": over,
        "repos_picked": len(picked),
        "picked": [r.id for r in picked],
    }
    return picked, selection


def read_repos(repos: list[Repo], config: ValidateConfig) -> Iterator[Candidate]:
    """Candidates of the given repositories' files (a local file is read up to max_file_bytes + 1)."""
    for repo in repos:
        for f in repo.files:
            candidate = Candidate(source=f.url, repo=repo.id, path=f.path, size=f.size, license=repo.license)
            if f.problem:
                candidate.problem = f.problem
                yield candidate
                continue
            try:
                with io.open_url(f.url, "rb") as fh:
                    # local files: stop after the limit; S3 bodies arrive whole, so their size is exact
                    candidate.data = fh.read(config.max_file_bytes + 1 if f.size is not None else -1)
            except io.StorageError as e:
                candidate.problem = ("unreadable", str(e))
            except OSError as e:  # failing after the open (an I/O error mid-read)
                candidate.problem = ("unreadable", f"{f.url}: cannot read: {e.strerror or e}")
            if candidate.size is None and isinstance(candidate.data, bytes):
                candidate.size = len(candidate.data)
            yield candidate
