"""A small corpus in pack's output format, for tests and the benchmark (pack is a separate stage).

Documents are tokenized, closed with EOS, concatenated and cut into ``seq_len`` rows
(a document may continue in the next row, where it is segment 0 again); the last row is
padded with PAD and segment -1, as docs/architecture.md describes.
"""

from __future__ import annotations

import json
import os

import numpy as np


def pack_rows(docs: list[list[int]], seq_len: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    tokens, segments = [], []
    row_t, row_s, seg = [], [], 0
    for doc in docs:
        rest = list(doc)
        while rest:
            room = seq_len - len(row_t)
            take, rest = rest[:room], rest[room:]
            row_t += take
            row_s += [seg] * len(take)
            seg += 1
            if len(row_t) == seq_len:
                tokens.append(row_t)
                segments.append(row_s)
                row_t, row_s, seg = [], [], 0
    if row_t:
        fill = seq_len - len(row_t)
        tokens.append(row_t + [pad_id] * fill)
        segments.append(row_s + [-1] * fill)

    def as_rows(rows, dtype):
        return np.array(rows, dtype=dtype).reshape(-1, seq_len)

    return as_rows(tokens, np.uint32), as_rows(segments, np.int32)


def tokenize(tokenizer, texts: list[str]) -> list[list[int]]:
    return [tokenizer.encode(t, add_special_tokens=False) + [tokenizer.eos_token_id] for t in texts]


def write_split(folder: str, tokens: np.ndarray, segments: np.ndarray) -> None:
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "tokens.npy"), tokens)
    np.save(os.path.join(folder, "segments.npy"), segments)


def write_pack(path: str, tokenizer, train_texts: list[str], val_texts: list[str], seq_len: int) -> str:
    """Write ``tokenizer/``, ``train/``, ``val/`` and ``meta.json`` under ``path``."""
    tokenizer.save_pretrained(os.path.join(path, "tokenizer"))
    for name, texts in (("train", train_texts), ("val", val_texts)):
        write_split(os.path.join(path, name), *pack_rows(tokenize(tokenizer, texts), seq_len, tokenizer.pad_token_id))
    fim = tokenizer.convert_tokens_to_ids(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"])
    meta = {
        "seq_len": seq_len,
        "vocab_size": len(tokenizer),
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id,
        "fim_begin": fim[0],
        "fim_hole": fim[1],
        "fim_end": fim[2],
        "fim_rate": 0.0,
        "spm_rate": 0.0,
    }
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return path


TEXT_SUFFIXES = (
    ".py",
    ".pyi",
    ".md",
    ".rst",
    ".txt",
    ".toml",
    ".cfg",
    ".json",
    ".yaml",
    ".yml",
    ".c",
    ".h",
    ".js",
    ".html",
    ".css",
    ".sh",
)


def distribution_sources(n_repos: int = 40, max_bytes: int = 1_000_000) -> list[str]:
    """Text files of the first ``n_repos`` installed distributions by name: the local run's corpus shape."""
    import importlib.metadata as md

    dists = sorted({d.metadata["Name"].lower(): d for d in md.distributions()}.items())[:n_repos]
    texts = []
    for _, dist in dists:
        for f in sorted(dist.files or [], key=str):
            path = str(f.locate())
            if (
                f.suffix in TEXT_SUFFIXES
                and ".dist-info" not in str(f)
                and os.path.isfile(path)
                and os.path.getsize(path) < max_bytes
            ):
                texts.append(open(path, encoding="utf-8", errors="replace").read())
    return texts
