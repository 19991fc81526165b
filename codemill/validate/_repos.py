"""Repository-shaped sources: installed distributions, and folders of repositories.

Both are listed first (names and sizes only), then picked deterministically: name
filters, a per-repository byte cap that skips giant distributions, then the first
``max_repos`` by id. Files that are never read (binary extensions, ``.git``,
``node_modules``, packaging metadata) are counted by why, not quarantined: they are not
source files of the repository, the way ``.git`` is not.

Files that are listed but cannot be used are records, quarantined with a reason: a
symbolic link whose target lies outside its repository (``symlink_outside_repo``: never
followed, so nothing from elsewhere on the machine is read as the repository's), and a
file that cannot be stat'ed or read, such as a broken link (``unreadable``).
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from email.parser import HeaderParser
from typing import Iterator

from codemill import io
from codemill.stage import InputError
from codemill.validate._config import ValidateConfig
from codemill.validate._languages import is_binary_name
from codemill.validate._sources import Candidate


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
    if not (os.path.isfile(record_url) and os.path.isfile(meta_url)):
        return None
    meta = HeaderParser().parsestr(io.read_bytes(meta_url).decode("utf-8", "replace"))
    name = re.sub(r"[-_.]+", "-", (meta.get("Name") or dist_info.split("-")[0])).lower()
    repo = Repo(id=f"{name}=={meta.get('Version', '0')}", files=[], license=_license(meta))
    for row in csv.reader(io.read_text(record_url).splitlines()):
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
        if size is None and not os.path.isfile(full):
            repo.skipped["missing_on_disk"] += 1
            continue
        repo.files.append(RepoFile(full, path, size if size is not None else os.path.getsize(full)))
    return repo


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


def folder_repos(source: str, config: ValidateConfig) -> list[Repo]:
    """Each subfolder of ``source`` is a repository; files at its top level belong to none."""
    if not io.is_s3(source) and not os.path.isdir(io.local_path(source)):
        raise InputError(f"{source}: no such folder (and not site-packages or a JSONL/Parquet file or glob)")
    root = (source if io.is_s3(source) else io.local_path(source)).rstrip("/") + "/"
    skip_dirs, binary_exts = _skip_sets(config)
    repos: dict[str, Repo] = {}
    for url in io.list_files(source):
        name, _, path = url[len(root):].replace(os.sep, "/").partition("/")
        if not path:
            continue  # a file beside the repositories, not inside one
        repo = repos.setdefault(name, Repo(id=name, files=[]))
        skip = _skip_reason(path, skip_dirs, binary_exts)
        if skip:
            repo.skipped[skip] += 1
            continue
        if io.is_s3(url):
            repo.files.append(RepoFile(url, path, None))
        else:
            repo.files.append(_local_file(url, path, os.path.join(root, name)))
    if not repos:
        raise InputError(f"{source}: no repository subfolders with files found")
    return list(repos.values())


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _local_file(url: str, path: str, repo_root: str) -> RepoFile:
    """A listed local file; a link out of its repository or a failing stat becomes its problem."""
    local = io.local_path(url)
    if os.path.islink(local):
        target = os.path.realpath(local)
        if not _inside(target, os.path.realpath(repo_root)):
            return RepoFile(url, path, None, ("symlink_outside_repo",
                                              f"{local} is a symbolic link to {target}, outside the repository "
                                              f"{repo_root}; not followed"))
    try:
        size = os.path.getsize(local)
    except OSError as e:
        return RepoFile(url, path, None, ("unreadable", f"{local}: cannot stat: {e.strerror or e}"))
    return RepoFile(url, path, size)


# ---------------------------------------------------------------------------- picking and reading


def _matches(repo: Repo, patterns: list[str]) -> bool:
    name = repo.id.split("==")[0]
    return any(fnmatch.fnmatchcase(repo.id, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def select(repos: list[Repo], config: ValidateConfig, source: str) -> tuple[list[Repo], dict]:
    """The repositories to read, and a summary of how they were picked."""
    matching = [r for r in repos if (not config.include_repos or _matches(r, config.include_repos))
                and not _matches(r, config.exclude_repos)]
    too_big = {r.id for r in matching if config.max_repo_bytes and r.size > config.max_repo_bytes}
    over = sorted(too_big)
    fitting = sorted((r for r in matching if r.id not in too_big), key=lambda r: r.id)
    picked = fitting[: config.max_repos] if config.max_repos > 0 else fitting
    if not picked:
        raise InputError(f"{source}: no repository left to read: {len(repos)} found, {len(matching)} match the "
                         f"name filters, {len(over)} are over max_repo_bytes={config.max_repo_bytes}")
    selection = {"repos_found": len(repos), "repos_matching": len(matching), "repos_over_byte_cap": over,
                 "repos_picked": len(picked), "picked": [r.id for r in picked]}
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
