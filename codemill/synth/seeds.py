"""oss-instruct seeds, the Magicoder way: a random file, then ``randint(min, max)``
consecutive lines from a random start (docs/synth.md, "Seeds").

Per-language quotas: ``max_samples`` is split over the languages by their shares
(largest remainder). Within a language, files are visited in a seeded random order, each
once before any is taken again, so a small corpus is covered evenly (Magicoder draws with
replacement); snippets that are only whitespace are redrawn. Only the ``language``
column is read for all files; file contents are read one input file at a time for the
rows picked.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from codemill import io
from codemill.stage import InputError

REDRAWS = 8  # blank snippets redrawn per seed before the file is passed over


@dataclass(frozen=True)
class Seed:
    index: int  # position in the run: the sample's id
    language: str
    snippet: str
    origin: str  # repo/path:Lstart-Lend


def input_files(url: str) -> list[str]:
    files = io.expand(io.join(url, "files", "*.parquet")) or io.expand(io.join(url, "*.parquet"))
    if not files:
        raise InputError(f"{url}: no files/*.parquet (expected dedup's or validate's output folder)")
    return files


def quotas(total: int, shares: dict[str, float]) -> dict[str, int]:
    """``total`` split by ``shares`` (summing to 1) with the largest-remainder rule, ties by name."""
    exact = {k: total * v for k, v in shares.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = total - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return counts


def _index(files: list[str]) -> dict[str, list[tuple[int, int]]]:
    """language -> [(file number, row)] over every input file."""
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for number, url in enumerate(files):
        if "language" not in io.parquet_schema(url).names:
            raise InputError(f"{url}: no 'language' column (expected validate's file schema)")
        for row, language in enumerate(io.read_parquet(url, columns=["language"]).column("language").to_pylist()):
            found[str(language or "").lower()].append((number, row))
    return found


def _snippet(rng: random.Random, content: str, low: int, high: int) -> tuple[str, int, int] | None:
    lines = content.splitlines()
    if not lines:
        return None
    for _ in range(REDRAWS):
        length = rng.randint(low, high)
        start = rng.randint(0, max(0, len(lines) - length))
        text = "\n".join(lines[start : start + length])
        if text.strip():
            return text, start + 1, min(len(lines), start + length)
    return None


def draw(url: str, total: int, shares: dict[str, float], seed: int, low: int, high: int) -> tuple[list[Seed], dict]:
    """``total`` seeds from the corpus at ``url``, and stats (per language: asked, drawn, files)."""
    files = input_files(url)
    index = _index(files)
    plan: list[tuple[str, int, int]] = []  # (language, file number, row) in seed order
    stats: dict = {"languages": {}}
    for language, count in sorted(quotas(total, shares).items()):
        rows = index.get(language, [])
        order = random.Random(f"{seed}:order:{language}").sample(rows, len(rows))
        picked = [order[i % len(order)] for i in range(count)] if order else []
        stats["languages"][language] = {"quota": count, "files": len(rows), "drawn": 0}
        plan += [(language, f, r) for f, r in picked]
    contents = _contents(files, plan)
    rng = random.Random(f"{seed}:snippets")
    seeds: list[Seed] = []
    for language, f, r in plan:
        record = contents[(f, r)]
        found = _snippet(rng, record["content"] or "", low, high)
        if found is None:
            continue
        text, first, last = found
        seeds.append(Seed(len(seeds), language, text, f"{record['repo']}/{record['path']}:L{first}-L{last}"))
        stats["languages"][language]["drawn"] += 1
    if not seeds:
        raise InputError(
            f"{url}: no seed snippet in the languages {sorted(shares)} (the corpus has {sorted(k for k in index if k)})"
        )
    stats.update(seeds=len(seeds), files=sum(len(v) for v in index.values()))
    return seeds, stats


def _contents(files: list[str], plan: list[tuple[str, int, int]]) -> dict[tuple[int, int], dict]:
    wanted: dict[int, set[int]] = defaultdict(set)
    for _, f, r in plan:
        wanted[f].add(r)
    out = {}
    for f, rows in sorted(wanted.items()):
        table = io.read_parquet(files[f], columns=["repo", "path", "content"])
        for r in sorted(rows):
            out[(f, r)] = {name: table.column(name)[r].as_py() for name in ("repo", "path", "content")}
    return out
