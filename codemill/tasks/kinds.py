"""Tasks of each kind from one kept function, and the tasks table's schema.

- ``generate``: the prompt is the context the function needs and its signature and
  docstring (HumanEval-style); the tests are every case; ``answer`` is the reference body
  (the completion that continues the prompt). A function whose doctest states a wrong
  result gets no generate task (the prompt would contradict the tests).
- ``output``: the prompt is the reference (its docstring's doctest examples cut, so the
  prompt never shows its own answer) and one call, ``assert f(<input>) == ??``; the
  answer is the returned value as a Python literal; the tests hold that one case.
- ``input``: the prompt is the reference and one output, ``assert f(??) == <output>``;
  the answer is the argument source of the case shown (any arguments giving that output
  pass); the tests hold that one case.

The case an output or input task shows is drawn with a ``random.Random`` seeded by the
seed, the function's key and the kind, so it does not depend on sharding.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random

import pyarrow as pa

TASK_SCHEMA = pa.schema(
    [
        ("task_id", pa.string()),
        ("kind", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("entry_point", pa.string()),
        ("prompt", pa.large_string()),
        ("reference", pa.large_string()),
        ("tests", pa.large_string()),
        ("answer", pa.large_string()),
        ("split", pa.string()),
        ("language", pa.string()),
    ]
)
OUTPUT_INSTRUCTION = "# Replace ?? with the value this call returns, written as a Python literal."
INPUT_INSTRUCTION = "# Replace ?? with arguments (Python literals) for which this assertion holds."


def split_of(repo: str, seed: int, heldout_fraction: float) -> str:
    """``heldout`` for a stable share of repositories (by hash of seed and name), else ``train``."""
    digest = hashlib.sha256(f"{seed}:{repo}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def task_id(kind: str, entry_point: str, key: str) -> str:
    return f"{kind}/{entry_point}-{key[:12]}"


def strip_doctests(reference: str, entry_point: str) -> str:
    """The reference with the doctest examples (``>>>`` lines, their ``...`` continuations and
    the output lines after them) cut from the entry point's docstring: an output or input
    prompt must not show its own answer. The rest of the docstring stays."""
    tree = ast.parse(reference)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point)
    doc = node.body[0]
    lines = reference.split("\n")
    keep, in_example = [], False
    for number, line in enumerate(lines, start=1):
        inside = doc.lineno < number < doc.end_lineno  # the first and last lines hold the quotes
        text = line.strip()
        if inside and text.startswith(">>>"):
            in_example = True
        elif inside and in_example and (text.startswith("...") or text):
            pass  # a continuation, or the example's output
        else:
            in_example = False
            keep.append(line)
            continue
        if not inside:
            keep.append(line)
    return "\n".join(keep)


def build_tasks(row: dict, kinds: list[str], seed: int, heldout_fraction: float) -> list[dict]:
    """One task per kind for a kept function row (repo, path, entry_point, key, context,
    reference, stub, body, cases)."""
    cases = json.loads(row["cases"])
    name, reference = row["entry_point"], row["reference"]
    base = {
        "repo": row["repo"],
        "path": row["path"],
        "entry_point": name,
        "reference": reference,
        "split": split_of(row["repo"], seed, heldout_fraction),
        "language": "python",
    }
    shown = strip_doctests(reference, name).rstrip("\n")
    out = []
    for kind in kinds:
        if kind == "generate" and row.get("doctest_disagrees"):
            continue  # its docstring shows a wrong result: the prompt would contradict the tests
        pick = random.Random(f"{seed}:{row['key']}:{kind}").randrange(len(cases))
        given, value = cases[pick]
        if kind == "generate":
            prompt = (f"{row['context']}\n\n\n" if row["context"] else "") + row["stub"]
            tests, answer = cases, row["body"]
        elif kind == "output":
            prompt = f"{shown}\n\n{OUTPUT_INSTRUCTION}\nassert {name}({given}) == ??\n"
            tests, answer = [cases[pick]], value
        else:
            prompt = f"{shown}\n\n{INPUT_INSTRUCTION}\nassert {name}(??) == {value}\n"
            tests, answer = [cases[pick]], given
        out.append(
            {
                "task_id": task_id(kind, name, row["key"]),
                "kind": kind,
                **base,
                "prompt": prompt,
                "tests": json.dumps([{"input": i, "output": o} for i, o in tests], ensure_ascii=False),
                "answer": answer,
            }
        )
    return out
