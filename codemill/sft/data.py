"""Chat examples for SFT from synth's ``data/`` and the tasks stage's ``tasks/``.

- synth (docs/architecture.md, issue 14's contract): ``data/*.parquet`` with a ``messages``
  column, a list of ``{role, content}``; no split, so a seeded ``eval_fraction`` is held out.
- tasks (issue 13's contract): ``tasks/*.parquet`` with ``task_id``, ``kind``, ``prompt``,
  ``reference``, ``split``; a ``generate`` task becomes a user turn (the prompt) and an
  assistant turn (the reference in a ```python block); ``split`` decides train or val.
  Other kinds are counted and left to RL.

A folder may also hold the Parquet files directly. A file without the columns it needs is
an ``InputError`` naming it; a bad row (no messages, an unknown role, non-text content, no
assistant turn) is quarantined with a reason, so ``rows = examples + quarantined``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from codemill import io
from codemill.stage import InputError

ROLES = ("system", "user", "assistant")
SYNTH_COLUMNS = ("messages",)
TASK_COLUMNS = ("task_id", "kind", "prompt", "reference", "split")


@dataclass
class Example:
    messages: list[dict]
    source: str  # file URL and row, for quarantine and the report
    split: str = ""  # "train", "val", or "" (choose by eval_fraction)


@dataclass
class Loaded:
    train: list[Example] = field(default_factory=list)
    val: list[Example] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    rows: int = 0
    by_input: dict = field(default_factory=dict)  # file URL -> rows read
    unused_task_kinds: dict = field(default_factory=dict)  # kind -> rows not turned into SFT examples


def load(data: str, eval_fraction: float, seed: int) -> Loaded:
    """Every example under the comma-separated folders ``data``, split into train and val."""
    out = Loaded()
    pending: list[Example] = []
    unused: Counter = Counter()
    folders = [d.strip() for d in data.split(",") if d.strip()]
    if not folders:
        raise InputError("sft: needs --data DIR[,DIR...]")
    for folder in folders:
        files = input_files(folder)
        for url in files:
            rows = _read_rows(url)
            out.rows += len(rows)
            out.by_input[url] = len(rows)
            for number, row in enumerate(rows):
                source = f"{url}#{number}"
                if "messages" in row:
                    example, reason = from_messages(row["messages"], source)
                else:
                    if row.get("kind") != "generate":
                        unused[str(row.get("kind"))] += 1
                        out.rows -= 1  # not an SFT row: counted under unused_task_kinds instead
                        continue
                    example, reason = from_task(row, source)
                if reason:
                    out.quarantine.append(
                        {
                            "reason": reason[0],
                            "detail": reason[1],
                            "source": source,
                            "raw": json.dumps(row, default=str, ensure_ascii=False)[:4000],
                        }
                    )
                elif example.split == "val":
                    out.val.append(example)
                elif example.split == "train":
                    out.train.append(example)
                else:
                    pending.append(example)
    out.unused_task_kinds = dict(sorted(unused.items()))
    for example in pending:  # a seeded, order-independent share of unsplit examples goes to val
        (out.val if _held_out(example, eval_fraction, seed) else out.train).append(example)
    if not out.val and len(out.train) > 1 and eval_fraction > 0:
        out.val.append(out.train.pop(max(range(len(out.train)), key=lambda i: _hash(out.train[i], seed))))
    return out


def input_files(folder: str) -> list[str]:
    """The Parquet files of one --data folder: ``data/``, ``tasks/``, or the folder itself."""
    for sub in ("data", "tasks"):
        files = [u for u in io.expand(io.join(folder, sub, "*.parquet"))]
        if files:
            return files
    files = io.expand(io.join(folder, "*.parquet"))
    if not files:
        raise InputError(f"{folder}: no data/*.parquet (synth) or tasks/*.parquet (tasks) here")
    return files


def _read_rows(url: str) -> list[dict]:
    names = set(io.parquet_schema(url).names)
    if set(SYNTH_COLUMNS) <= names:
        columns = ["messages"]
    elif set(TASK_COLUMNS) <= names:
        columns = list(TASK_COLUMNS)
    else:
        raise InputError(
            f"{url}: expected a 'messages' column (synth) or the columns {', '.join(TASK_COLUMNS)} "
            f"(tasks); found {', '.join(sorted(names)) or 'none'}"
        )
    return io.read_parquet(url, columns=columns).to_pylist()


def from_messages(messages, source: str) -> tuple[Example | None, tuple[str, str] | None]:
    """An example from a synth row's messages, or the (reason, detail) it is quarantined for."""
    if not isinstance(messages, list) or not messages:
        return None, ("empty_messages", "messages is empty or not a list")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return None, ("bad_message", f"message {i} is not a {{role, content}} record")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            return None, ("unknown_role", f"message {i} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            return None, ("bad_content", f"message {i} ({role}) has no text content")
        if role == "system" and i:
            return None, ("misplaced_system", f"message {i} is a system message after the first turn")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "assistant":
        return None, ("no_assistant", "the conversation does not end with an assistant turn")
    return Example(clean, source), None


def from_task(row: dict, source: str) -> tuple[Example | None, tuple[str, str] | None]:
    """A ``generate`` task as a user turn (its prompt) and an assistant turn (its reference)."""
    prompt, reference, split = row.get("prompt"), row.get("reference"), row.get("split")
    if not isinstance(prompt, str) or not prompt.strip() or not isinstance(reference, str) or not reference.strip():
        return None, ("bad_content", "task without a prompt or a reference")
    if split not in ("train", "heldout"):
        return None, ("bad_split", f"split {split!r}; expected train or heldout")
    answer = f"```python\n{reference.strip()}\n```"
    return Example(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        source,
        "val" if split == "heldout" else "train",
    ), None


def _hash(example: Example, seed: int) -> int:
    text = json.dumps(example.messages, sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(f"{seed}\0{text}".encode()).digest()[:8], "big")


def _held_out(example: Example, fraction: float, seed: int) -> bool:
    # by content hash, so the split does not depend on file order or on how many files there are
    return _hash(example, seed) < fraction * 2**64


QUARANTINE_COLUMNS = ("reason", "detail", "source", "raw")


def write_quarantine(rows: list[dict], folder: str) -> None:
    """``quarantine/examples.parquet``: one row per example not trained on, with its reason."""
    import pyarrow as pa

    table = pa.table(
        {k: [str(r.get(k, "")) for r in rows] for k in QUARANTINE_COLUMNS},
        schema=pa.schema([(k, pa.string()) for k in QUARANTINE_COLUMNS]),
    )
    io.write_parquet(table, io.join(folder, "quarantine", "examples.parquet"))
