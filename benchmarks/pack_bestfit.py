"""Documents split by packing: best-fit decreasing (the packer) against greedy concatenation.

    .venv/bin/python benchmarks/pack_bestfit.py --repos 26 --seq-len 2048
    .venv/bin/python benchmarks/pack_bestfit.py --repos 400 --seq-len 2048

The corpus looks like a held-out set of small repositories: each repository is one module
of the standard library (the first ``--repos`` top-level ``*.py`` files, sorted, kept by
validate's thresholds), so each is exactly one document. The whole stage runs on it
(tokenizer trained on the corpus, ``--vocab-size``; FIM 0.5; no validation split) and its
``stats.json`` gives ``split_documents`` and the packing efficiency.

"Before" is the packer this one replaced, replayed on the same documents' token counts in
the same (seeded) order: rows filled greedily, a document cut wherever a row ends, a row
closed with less than ``min_unit_tokens`` left; plain units (FIM changes a unit by a few
tokens, not which documents cross a row boundary). "Lower bound": documents that cannot
fit one row (``tokens + 2 > seq_len``), which any packer must split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pyarrow.parquet as pq  # noqa: E402

from codemill import io  # noqa: E402
from codemill.pack import PackConfig, corpus, run  # noqa: E402
from codemill.pack.corpus import read_repos  # noqa: E402
from codemill.pack.documents import BuildStats, repo_documents  # noqa: E402
from codemill.pack.tokenizer import TextEncoder  # noqa: E402
from codemill.records import FILE_SCHEMA, FileRecord, to_table  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from pack_throughput import keep  # noqa: E402


def single_module_corpus(folder: str, repos: int) -> str:
    stdlib = sysconfig.get_paths()["stdlib"]
    records = []
    for name in sorted(os.listdir(stdlib)):
        if not name.endswith(".py") or name.startswith("_"):
            continue
        with open(os.path.join(stdlib, name), encoding="utf-8") as f:
            text = f.read()
        if text.strip() and keep(text):
            records.append(
                FileRecord(repo=f"stdlib/{name[:-3]}", path=name, content=text, language="python").finalize()
            )
        if len(records) == repos:
            break
    io.write_parquet(to_table(records, FILE_SCHEMA), io.join(folder, "files", "shard-00000-of-00001.parquet"))
    return folder


def greedy_splits(lengths: list[int], seq_len: int, min_unit: int) -> tuple[int, float]:
    """Split documents and efficiency of greedy concatenation (plain units: BOS text EOS)."""
    fill, rows, used, split = 0, 0, 0, 0
    for n in lengths:
        rest, pieces = n, 0
        while rest > 0:
            if seq_len - fill < min_unit:
                fill = 0
            if fill == 0:
                rows += 1
            if rest + 2 <= seq_len - fill:
                fill, used, rest = fill + rest + 2, used + rest + 2, 0
            else:
                take = seq_len - fill - 1
                used, rest, fill = used + seq_len - fill, rest - take, 0
            pieces += 1
        split += pieces > 1
    return split, used / (rows * seq_len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=26, help="single-module repositories (default: 26)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pack-bestfit-") as work:
        source = single_module_corpus(os.path.join(work, "dedup"), args.repos)
        config = PackConfig(seq_len=args.seq_len, vocab_size=args.vocab_size, val_fraction=0.0)
        out = os.path.join(work, "out")
        stats = run(config, source, out)
        units = pq.read_table(os.path.join(out, "train", "documents.parquet")).to_pylist()
        # the packer's arrival order (document number -> its one repository), and each
        # document's plain-text tokens, encoded as the stage does
        order = {u["document"]: u["repo"] for u in units}
        records = read_repos(corpus.input_urls(source), sorted(set(order.values())), Counter())
        texts = [repo_documents(order[d], records[order[d]], config.seed, BuildStats())[0].text for d in sorted(order)]
        lengths = [len(ids) for ids in TextEncoder(os.path.join(out, "tokenizer")).encode(texts)]
    before, before_eff = greedy_splits(lengths, args.seq_len, config.min_unit_tokens)
    print(
        json.dumps(
            {
                "corpus": f"{stats['documents']} single-module repositories (stdlib), "
                f"{stats['tokens']:,} packed tokens",
                "seq_len": args.seq_len,
                "documents": stats["documents"],
                "documents_longer_than_a_row": sum(n + 2 > args.seq_len for n in lengths),
                "split_documents_before_greedy": before,
                "packing_efficiency_before_greedy": round(before_eff, 5),
                "split_documents_after_best_fit": stats["split_documents"],
                "packing_efficiency_after_best_fit": round(stats["packing_efficiency"], 5),
                "sequences": stats["sequences"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
