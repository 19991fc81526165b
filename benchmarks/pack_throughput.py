"""Pack stage throughput and packing efficiency, next to the tokenizer's raw batch encoder.

    .venv/bin/python benchmarks/pack_throughput.py                    # the local corpus
    .venv/bin/python benchmarks/pack_throughput.py --input runs/local/<run>/dedup

Without ``--input`` the corpus is built here the way the local preset sees it: the first
``--repos`` (40) top-level packages of this environment's site-packages, one repository
each, files kept by validate's thresholds (docs/validate.md) (<= 1 MB, mean line <= 100, longest
line <= 1000, >= 25% alphabetic; JSON skipped). The tokenizer is trained once (timed on
its own); then, ``--repeat`` times, the measured part:

- stage: ``pack_shard`` + ``finish`` from dedup's Parquet to the finished output folder
  (reading, dependency order, tokenizing, FIM, packing, writing);
- raw: the same tokenizer's ``encode_batch_fast`` on the same texts (every file part of
  every document, in the batches the stage uses), reading back the ids; nothing else.

Both rates count the plain-text tokens of the corpus (what the raw encoder returns), so
the ratio is time against time. The two run alternately; reported are the best of the
repeats, the median of the per-repeat ratios (a raw run and the stage run right after
it see about the same load on a shared machine), and process CPU time (all threads),
which load from other processes disturbs least.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from codemill import io  # noqa: E402
from codemill.pack import PackConfig, finish, pack_shard, train_tokenizer  # noqa: E402
from codemill.pack.corpus import read_repos  # noqa: E402
from codemill.pack.documents import BuildStats, repo_documents  # noqa: E402
from codemill.pack.steps import read_plan  # noqa: E402
from codemill.pack.tokenizer import TextEncoder  # noqa: E402
from codemill.records import FILE_SCHEMA, FileRecord, to_table  # noqa: E402

SOURCE_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".js": "javascript",
    ".ts": "typescript",
    ".md": "markdown",
    ".rst": "restructuredtext",
    ".sh": "shell",
    ".html": "html",
    ".css": "css",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".cfg": "ini",
    ".txt": "text",
}


def keep(text: str) -> bool:
    """validate's thresholds (docs/validate.md, DeepSeek-Coder §2.1)."""
    lines = text.splitlines() or [""]
    return (
        len(text.encode("utf-8")) <= 1_000_000
        and sum(map(len, lines)) / len(lines) <= 100
        and max(map(len, lines)) <= 1000
        and sum(c.isalpha() for c in text) >= 0.25 * len(text)
    )


def local_corpus(folder: str, repos: int) -> str:
    site = sysconfig.get_paths()["purelib"]
    packages = sorted(
        d
        for d in os.listdir(site)
        if os.path.isdir(os.path.join(site, d))
        and not d.endswith((".dist-info", ".libs", ".egg-info"))
        and not d.startswith("__")
    )
    records = []
    taken = 0
    for package in packages:
        found = []
        for dirpath, dirnames, names in os.walk(os.path.join(site, package)):
            dirnames.sort()
            for name in sorted(names):
                lang = SOURCE_EXTENSIONS.get(os.path.splitext(name)[1])
                if not lang:
                    continue
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                if text.strip() and keep(text):
                    rel = os.path.relpath(os.path.join(dirpath, name), site).replace(os.sep, "/")
                    found.append(FileRecord(repo=f"pypi/{package}", path=rel, content=text, language=lang).finalize())
        if found:
            records += found
            taken += 1
        if taken == repos:
            break
    io.write_parquet(to_table(records, FILE_SCHEMA), io.join(folder, "files", "shard-00000-of-00001.parquet"))
    return folder


def corpus_texts(source: str, output: str, seed: int) -> list[str]:
    """Every file part of every document (train and val): the text the stage encodes."""
    plan = read_plan(output)
    repos = read_repos(plan["inputs"], plan["repos"], Counter())
    return [p for repo in sorted(repos) for d in repo_documents(repo, repos[repo], seed, BuildStats()) for p in d.parts]


def cpu_seconds() -> float:
    """User + system time of this process, every thread included (the tokenizer's pool too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def raw_encode(encoder: TextEncoder, texts: list[str], batch_mb: float) -> int:
    """Token count of ``texts``, encoded in batches of about ``batch_mb`` MB as the stage does."""
    n, start, size = 0, 0, 0
    for end, text in enumerate(texts, 1):
        size += len(text)
        if size >= batch_mb * 1e6 or end == len(texts):
            n += sum(
                len(e.ids) for e in encoder.tokenizer.encode_batch_fast(texts[start:end], add_special_tokens=False)
            )
            start, size = end, 0
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="", help="a dedup output folder (default: build the local corpus)")
    parser.add_argument("--repos", type=int, default=40, help="repositories of the local corpus (default: 40)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="", help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args()

    work = args.workdir or tempfile.mkdtemp(prefix="pack-bench-")
    source = args.input or local_corpus(os.path.join(work, "dedup"), args.repos)
    config = PackConfig(seq_len=args.seq_len, vocab_size=args.vocab_size)
    base = os.path.join(work, "base")
    shutil.rmtree(base, ignore_errors=True)
    t0 = time.perf_counter()
    train_tokenizer(config, source, base)
    tokenizer_seconds = time.perf_counter() - t0
    encoder = TextEncoder(os.path.join(base, "tokenizer"))
    texts = corpus_texts(source, base, config.seed)
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)

    stage_times, raw_times, stage_cpu, raw_cpu, stats = [], [], [], [], {}
    for i in range(args.repeat):
        wall, cpu, text_tokens = timed(lambda: raw_encode(encoder, texts, config.encode_batch_mb))
        raw_times.append(wall)
        raw_cpu.append(cpu)
        out = os.path.join(work, f"run{i}")
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(base, out)  # tokenizer, plan and the tokenizer step's marker
        wall, cpu, stats = timed(lambda out=out: (pack_shard(config, source, out), finish(out))[1])
        stage_times.append(wall)
        stage_cpu.append(cpu)

    stage_rate, raw_rate = text_tokens / min(stage_times), text_tokens / min(raw_times)
    result = {
        "corpus": {
            "input": args.input or f"site-packages, first {args.repos} packages",
            "files": len(texts),
            "text_mb": round(text_bytes / 1e6, 2),
            "text_tokens": text_tokens,
            "repos": sum(stats["repos"].values()),
        },
        "config": {"seq_len": config.seq_len, "vocab_size": config.vocab_size, "fim_rate": config.fim_rate},
        "tokenizer_training_s": round(tokenizer_seconds, 2),
        "stage_s": [round(t, 2) for t in stage_times],
        "raw_encode_s": [round(t, 2) for t in raw_times],
        "stage_tokens_per_s": round(stage_rate),
        "raw_tokens_per_s": round(raw_rate),
        "stage_vs_raw": round(stage_rate / raw_rate, 3),
        "stage_vs_raw_paired_median": round(statistics.median(r / s for r, s in zip(raw_times, stage_times)), 3),
        "stage_cpu_s": [round(t, 2) for t in stage_cpu],
        "raw_encode_cpu_s": [round(t, 2) for t in raw_cpu],
        "stage_vs_raw_cpu": round(min(raw_cpu) / min(stage_cpu), 3),
        "packed_tokens": stats["tokens"],
        "sequences": stats["sequences"],
        "pad_tokens": stats["pad_tokens"],
        "packing_efficiency": round(stats["packing_efficiency"], 5),
        "split_documents": stats.get("split_documents"),
        "fim_rate_observed": round(stats["fim_rate_observed"], 4),
        "spm_share_observed": round(stats["spm_share_observed"], 4),
    }
    print(json.dumps(result, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
