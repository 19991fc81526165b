"""On pack's held-out repositories: FIM exact match on random spans, and perplexity.

Both need the model, so they run in the generation step.

- **FIM exact match**: ``heldout/documents.parquet`` (repo, language, text). A span is a
  run of 1..``fim_span_lines`` whole lines starting at a random non-blank line of a random
  document (seeded); the model fills it from the prefix and suffix in PSM order, its
  middle is cut to the span's line count, and it matches when equal after stripping
  (SantaCoder). Whole lines rather than character spans: a span cut mid-token asks the
  model to reproduce an arbitrary fragment, which says little about infilling.
- **perplexity**: ``val/tokens.npy`` + ``val/segments.npy``; every document piece of a
  sequence (a run of one segment id) is scored on its own, positions from 0, so no
  token attends across a document boundary, as in training. exp(mean NLL) over the
  predicted tokens.
"""

from __future__ import annotations

import io as _io
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from codemill import io
from codemill.evaluate.data import Result
from codemill.evaluate.generation import Generator
from codemill.stage import InputError

NAME = "heldout_fim"


@dataclass(slots=True)
class Span:
    task_id: str
    prefix: str
    middle: str
    suffix: str

    @property
    def lines(self) -> int:
        return max(1, len(self.middle.splitlines()))


def load_documents(pack: str) -> list[tuple[str, str]]:
    """(repo, text) of the held-out documents, in file order."""
    url = io.join(pack, "heldout", "documents.parquet")
    if not io.exists(url):
        raise InputError(f"{url}: pack's held-out documents not found (is {pack} a pack output folder?)")
    table = io.read_parquet(url)
    missing = {"repo", "text"} - set(table.column_names)
    if missing:
        raise InputError(f"{url}: missing columns {sorted(missing)} (expected repo, language, text)")
    return list(zip(table.column("repo").to_pylist(), table.column("text").to_pylist()))


def choose_spans(docs: list[tuple[str, str]], count: int, max_lines: int, seed: int) -> list[Span]:
    rng = random.Random(seed)
    usable = [
        (i, repo, text.splitlines(keepends=True))
        for i, (repo, text) in enumerate(docs)
        if isinstance(text, str) and sum(1 for line in text.splitlines() if line.strip()) >= 2
    ]
    spans, seen = [], set()
    for _ in range(count * 4):  # a few redraws when a span repeats
        if len(spans) == count or not usable:
            break
        doc, repo, lines = usable[rng.randrange(len(usable))]
        start = rng.choice([j for j, line in enumerate(lines) if line.strip()])
        length = rng.randint(1, max_lines)
        if (doc, start, length) in seen:
            continue
        seen.add((doc, start, length))
        spans.append(
            Span(
                f"{repo}#{doc}:L{start}+{length}",
                "".join(lines[:start]),
                "".join(lines[start : start + length]),
                "".join(lines[start + length :]),
            )
        )
    return spans


def fim_exact_match(gen: Generator, spans: list[Span], max_new_tokens: int, batch_size: int) -> list[Result]:
    budget = gen.budget(max_new_tokens)
    prompts = [gen.encode_fim(s.prefix, s.suffix, budget)[0] for s in spans]
    middles = gen.complete(
        prompts, max_new_tokens, max_lines=[s.lines for s in spans], batch_size=batch_size, desc="heldout fim"
    )
    return [
        Result(
            NAME,
            s.task_id,
            "greedy",
            0,
            m,
            m.strip() == s.middle.strip(),
            "exact match" if m.strip() == s.middle.strip() else "mismatch",
        )
        for s, m in zip(spans, middles)
    ]


def _load_array(url: str) -> np.ndarray:
    if not io.exists(url):
        raise InputError(f"{url}: not found (perplexity needs pack's val/tokens.npy and val/segments.npy)")
    if io.is_s3(url):
        return np.load(_io.BytesIO(io.read_bytes(url)))
    return np.load(io.local_path(url), mmap_mode="r")


def document_pieces(tokens: np.ndarray, segments: np.ndarray, limit: int, context: int) -> list[np.ndarray]:
    """Runs of one segment id (padding dropped) from the first ``limit`` sequences, split to
    the model's context."""
    pieces = []
    for row in range(min(limit, tokens.shape[0])):
        seg = np.asarray(segments[row])
        bounds = np.flatnonzero(np.diff(seg)) + 1
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(seg)]):
            if seg[start] < 0 or end - start < 2:
                continue
            for s in range(start, end, context):
                if min(end, s + context) - s >= 2:
                    pieces.append(np.asarray(tokens[row, s : min(end, s + context)], dtype=np.int64))
    return pieces


def perplexity(gen: Generator, pack: str, sequences: int, token_budget: int = 4096) -> dict:
    tokens = _load_array(io.join(pack, "val", "tokens.npy"))
    segments = _load_array(io.join(pack, "val", "segments.npy"))
    if tokens.shape != segments.shape or tokens.ndim != 2:
        raise InputError(f"{pack}/val: tokens {tokens.shape} and segments {segments.shape} must be equal 2-D shapes")
    pieces = sorted(document_pieces(tokens, segments, sequences, gen.context), key=len, reverse=True)
    nll, count = 0.0, 0
    i = 0
    while i < len(pieces):
        width = len(pieces[i])
        rows = max(1, token_budget // width)
        batch = pieces[i : i + rows]
        i += len(batch)
        ids = torch.full((len(batch), width), gen.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, piece in enumerate(batch):
            ids[r, : len(piece)] = torch.from_numpy(piece)
            mask[r, : len(piece)] = 1
        with torch.no_grad():
            logits = gen.model(input_ids=ids.to(gen.device), attention_mask=mask.to(gen.device)).logits.float()
        target, keep = ids[:, 1:].to(gen.device), mask[:, 1:].to(gen.device).bool()
        losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), target, reduction="none")
        nll += float(losses[keep].sum())
        count += int(keep.sum())
    if count == 0:
        raise InputError(f"{pack}/val: no document with at least two tokens in the first {sequences} sequences")
    return {
        "perplexity": math.exp(nll / count),
        "ppl_tokens": count,
        "ppl_documents": len(pieces),
        "ppl_sequences": min(sequences, int(tokens.shape[0])),
    }
