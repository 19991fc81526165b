"""Tasks of each kind from one kept function, and the tasks table's schema.

- ``generate``: the prompt is the context the function needs and its signature and
  docstring (HumanEval-style); the tests are every case; ``answer`` is the reference body
  (the completion that continues the prompt).
- ``output``: the prompt is the reference and one call, ``assert f(<input>) == ??``; the
  answer is the returned value as a Python literal; the tests hold that one case.
- ``input``: the prompt is the reference and one output, ``assert f(??) == <output>``;
  the answer is the argument source of the case shown (any arguments giving that output
  pass); the tests hold that one case.

The case an output or input task shows is drawn with a ``random.Random`` seeded by the
seed, the function's key and the kind, so it does not depend on sharding.
"""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow as pa

TASK_SCHEMA = pa.schema([
    ("task_id", pa.string()), ("kind", pa.string()), ("repo", pa.string()), ("path", pa.string()),
    ("entry_point", pa.string()), ("prompt", pa.large_string()), ("reference", pa.large_string()),
    ("tests", pa.large_string()), ("answer", pa.large_string()), ("split", pa.string()), ("language", pa.string()),
])
OUTPUT_INSTRUCTION = "# Replace ?? with the value this call returns, written as a Python literal."
INPUT_INSTRUCTION = "# Replace ?? with arguments (Python literals) for which this assertion holds."


def split_of(repo: str, seed: int, heldout_fraction: float) -> str:
    """``heldout`` for a stable share of repositories (by hash of seed and name), else ``train``."""
    digest = hashlib.sha256(f"{seed}:{repo}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def task_id(kind: str, entry_point: str, key: str) -> str:
    return f"{kind}/{entry_point}-{key[:12]}"


def build_tasks(row: dict, kinds: list[str], seed: int, heldout_fraction: float) -> list[dict]:
    """One task per kind for a kept function row (repo, path, entry_point, key, context,
    reference, stub, body, cases)."""
    cases = json.loads(row["cases"])
    name, reference = row["entry_point"], row["reference"]
    base = {"repo": row["repo"], "path": row["path"], "entry_point": name, "reference": reference,
            "split": split_of(row["repo"], seed, heldout_fraction), "language": "python"}
    out = []
    for kind in kinds:
        pick = random.Random(f"{seed}:{row['key']}:{kind}").randrange(len(cases))
        given, value = cases[pick]
        if kind == "generate":
            prompt = (f"{row['context']}\n\n\n" if row["context"] else "") + row["stub"]
            tests, answer = cases, row["body"]
        elif kind == "output":
            prompt = f"{reference}\n\n{OUTPUT_INSTRUCTION}\nassert {name}({given}) == ??\n"
            tests, answer = [cases[pick]], value
        else:
            prompt = f"{reference}\n\n{INPUT_INSTRUCTION}\nassert {name}(??) == {value}\n"
            tests, answer = [cases[pick]], given
        out.append({"task_id": task_id(kind, name, row["key"]), "kind": kind, **base, "prompt": prompt,
                    "tests": json.dumps([{"input": i, "output": o} for i, o in tests], ensure_ascii=False),
                    "answer": answer})
    return out
