"""Small real corpora for the pack tests: files of installed distributions, as dedup's output."""

from __future__ import annotations

import os
import sysconfig

from codemill import io
from codemill.records import FILE_SCHEMA, FileRecord, to_table

SITE = sysconfig.get_paths()["purelib"]
LANGUAGES = {
    ".py": "Python",
    ".c": "C",
    ".h": "C",
    ".cpp": "C++",
    ".cc": "C++",
    ".js": "JavaScript",
    ".md": "Markdown",
    ".json": "JSON",
    ".css": "CSS",
    ".sh": "Shell",
}


def package_files(package: str, max_files: int = 10**9, max_bytes: int = 200_000) -> list[FileRecord]:
    """Source files of an installed package as one repository, paths relative to site-packages."""
    root = os.path.join(SITE, package)
    records = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for name in sorted(names):
            ext = os.path.splitext(name)[1]
            full = os.path.join(dirpath, name)
            if ext not in LANGUAGES or os.path.getsize(full) > max_bytes:
                continue
            try:
                text = open(full, encoding="utf-8").read()
            except UnicodeDecodeError:
                continue
            if not text.strip():
                continue
            rel = os.path.relpath(full, SITE).replace(os.sep, "/")
            records.append(
                FileRecord(
                    repo=f"pypi/{package}", path=rel, content=text, language=LANGUAGES[ext], source=full
                ).finalize()
            )
            if len(records) >= max_files:
                return records
    return records


def write_dedup_output(folder: str, repos: dict[str, list[FileRecord]] | list[FileRecord], shards: int = 2) -> str:
    """Write records as dedup's ``files/`` shards (repositories spread over shards); returns the folder."""
    records = [r for rs in repos.values() for r in rs] if isinstance(repos, dict) else list(repos)
    records.sort(key=lambda r: (r.repo, r.path))
    for s in range(shards):
        part = [r for i, r in enumerate(records) if i % shards == s]
        io.write_parquet(
            to_table(part, FILE_SCHEMA), io.join(folder, "files", f"shard-{s:05d}-of-{shards:05d}.parquet")
        )
    return folder


def small_tokenizer(directory: str, vocab_size: int = 700, seq_len: int = 256) -> str:
    """A byte-level BPE trained on the installed requests package, saved as a HF directory."""
    from codemill.pack import tokenizer

    texts = [r.content for r in package_files("requests")]
    tokenizer.save_trained(tokenizer.train_bpe(texts, vocab_size, 2), directory, seq_len)
    return directory


def code_blocks(packages: list[str], limit: int) -> list[str]:
    """Blank-line separated blocks of real source files (many small documents)."""
    blocks = []
    for package in packages:
        for record in package_files(package):
            blocks.extend(b + "\n" for b in record.content.split("\n\n") if len(b.strip()) > 20)
            if len(blocks) >= limit:
                return blocks[:limit]
    return blocks
