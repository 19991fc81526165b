"""What rl trains on: the tasks stage's prompts and stdin/stdout problems, as one record type.

- ``--tasks DIR``: ``DIR/tasks/*.parquet`` (or ``DIR/*.parquet``), the tasks stage's output
  (``task_id``, ``kind``, ``prompt``, ``split`` and what its scorer reads); rows of the
  chosen kinds in the ``train`` split train, ``heldout`` rows are scored for the fit.
- ``--problems FILE``: LiveCodeBench or rStar-Coder JSONL, read by evaluate's own loader
  (:func:`codemill.evaluate.stdio.load_tasks`), then decontaminated against the evaluation
  sets with validate's n-gram matcher (DeepSeek-Coder §2.4); every drop is counted.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass
from typing import Any

from codemill import io
from codemill.evaluate import stdio
from codemill.evaluate.data import read_jsonl
from codemill.rl.config import RLConfig
from codemill.stage import InputError

TASK_COLUMNS = ("task_id", "kind", "entry_point", "prompt", "reference", "tests", "split")
PROBLEM_FIELDS = ("question_content", "question")
HUMANEVAL_FIELDS = ["prompt", "canonical_solution", "test"]


@dataclass(slots=True)
class RLTask:
    task_id: str
    source: str  # "tasks" | "problems"
    kind: str  # generate | output | input | stdio
    prompt: str  # the text the model sees (before any chat template)
    split: str = "train"
    task: Any = None  # a codemill.tasks.score.Task, for the tasks stage's scorer
    problem: Any = None  # an evaluate Task (stdin/stdout cases), for the stdio judge
    statement: tuple[str, str] = ("", "")  # a problem's (title, statement), for the sandbox service


@dataclass
class Loaded:
    train: list[RLTask]
    heldout: list[RLTask]
    stats: dict


# ---------------------------------------------------------------------------- tasks


def task_files(url: str) -> list[str]:
    """``url/tasks/*.parquet``, else the Parquet files directly in ``url`` (not its quarantine/)."""
    found = io.expand(io.join(url, "tasks", "*.parquet"))
    if not found:
        found = [f for f in io.expand(io.join(url, "*.parquet")) if "/quarantine/" not in f.replace("\\", "/")]
    if not found:
        raise InputError(f"{url}: no tasks/*.parquet (expected the tasks stage's output folder)")
    return found


def load_task_rows(url: str, kinds: list[str]) -> tuple[list[RLTask], dict, list[dict]]:
    """Rows of the chosen kinds as RLTasks; rows the scorer cannot read are quarantined."""
    from codemill.tasks.score import Task

    tasks, quarantine, counts = [], [], {"rows": 0, "other_kinds": 0, "quarantined": 0}
    for path in task_files(url):
        table = io.read_parquet(path)
        missing = [c for c in TASK_COLUMNS if c not in table.column_names]
        if missing:
            raise InputError(f"{path}: not a tasks file (missing columns {missing})")
        for number, row in enumerate(table.to_pylist()):
            counts["rows"] += 1
            if row["kind"] not in kinds:
                counts["other_kinds"] += 1
                continue
            try:
                task = Task.from_row(row)
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                counts["quarantined"] += 1
                quarantine.append(
                    {
                        "reason": "unreadable_task",
                        "detail": f"row {number}: {e}",
                        "source": path,
                        "raw": json.dumps(row, default=str)[:2000],
                    }
                )
                continue
            tasks.append(RLTask(task.task_id, "tasks", task.kind, task.prompt, task.split, task=task))
    return tasks, counts, quarantine


# ---------------------------------------------------------------------------- problems


def problems_url(config: RLConfig, have_tasks: bool) -> str:
    if config.problems == "bundled" or (not config.problems and not have_tasks):
        return stdio.SHIPPED_PROBLEMS
    return config.problems


def decontaminator(sets: list[str], problems: str):
    """The matcher over the evaluation sets, and the sets left out (with why)."""
    from codemill.validate.decontam import HUMANEVAL, Decontaminator, load_benchmarks

    texts, skipped = [], {}
    for name in sets:
        if name == "stdio" and problems == stdio.SHIPPED_PROBLEMS:
            # the offline default IS evaluate's stdio set: dropping it would leave nothing to train on
            skipped[name] = "the training problems are evaluate's own stdio set"
        elif name == "stdio":
            texts += load_benchmarks([stdio.SHIPPED_PROBLEMS], list(PROBLEM_FIELDS))
        elif name == "humaneval":
            texts += load_benchmarks([HUMANEVAL], HUMANEVAL_FIELDS)
        else:
            texts += load_benchmarks([name], HUMANEVAL_FIELDS + list(PROBLEM_FIELDS))
    return (Decontaminator(texts) if texts else None), skipped


def load_problems(url: str, sets: list[str]) -> tuple[list[RLTask], dict, list[dict]]:
    problems, quarantine = stdio.load_tasks(url)
    rows, _ = read_jsonl(url)
    statements = {
        str(r.get("question_id") or r.get("task_id")): (
            str(r.get("question_title") or r.get("title") or ""),
            r.get("question_content") or r.get("question") or r.get("prompt"),
        )
        for r in rows
    }
    matcher, skipped = decontaminator(sets, url)
    kept, dropped = [], []
    for p in problems:
        title, statement = statements[p.task_id]
        # the raw text, not the prompt, whose "# " at each line start would break every n-gram across lines
        hit = matcher.find(f"{title}\n{statement}") if matcher else None
        if hit:
            dropped.append(
                {
                    "reason": "contaminated",
                    "detail": f"{p.task_id}: shares {hit[1]!r} with {hit[0]}",
                    "source": url,
                    "raw": p.task_id,
                }
            )
        else:
            kept.append(
                RLTask(p.task_id, "problems", "stdio", p.prompt, "train", problem=p, statement=statements[p.task_id])
            )
    stats = {
        "file": url,
        "read": len(problems) + len(quarantine),
        "quarantined": len(quarantine),
        "contaminated": len(dropped),
        "kept": len(kept),
        "decontaminated_against": sorted(set(sets) - set(skipped)),
        "decontamination_skipped": skipped,
    }
    return kept, stats, quarantine + dropped


def chat_problem(task: RLTask) -> RLTask:
    """The problem for a chat model: the statement as the user turn; the program is the code block it answers."""
    statement = task.problem.prompt.replace("\nimport sys\n", "\n")
    text = (
        statement.replace("# ", "").replace("#\n", "\n").strip()
        + "\n\nThink inside <think>...</think>, then give the whole program in one ```python code block."
    )
    return dataclasses.replace(task, prompt=text)


# ---------------------------------------------------------------------------- both


def _held_out(task_id: str, seed: int) -> int:
    return zlib.crc32(f"{seed}:{task_id}".encode())


def load(config: RLConfig, tasks_url: str | None) -> tuple[Loaded, list[dict]]:
    """Training and held-out prompts in task-id order, their counts, and quarantine rows."""
    train, heldout, stats, quarantine = [], [], {}, []
    if tasks_url:
        rows, stats["tasks"], quarantine = load_task_rows(tasks_url, config.kinds)
        train += [t for t in rows if t.split == "train"]
        heldout += [t for t in rows if t.split != "train"]
    url = problems_url(config, bool(tasks_url))
    if url:
        kept, stats["problems"], dropped = load_problems(url, config.decontaminate)
        train += kept
        quarantine += dropped
    train.sort(key=lambda t: t.task_id)
    if len({t.task_id for t in train}) != len(train):
        raise InputError(f"{tasks_url or url}: task ids are not unique")
    if config.max_tasks:
        train = train[: config.max_tasks]
    heldout = sorted(heldout, key=lambda t: (_held_out(t.task_id, config.seed), t.task_id))[: config.heldout_tasks]
    if not train:
        raise InputError(f"rl: no training prompts in {tasks_url or url} for kinds {config.kinds}")
    stats.update(train_prompts=len(train), heldout_prompts=len(heldout))
    return Loaded(train, sorted(heldout, key=lambda t: t.task_id), stats), quarantine


def rows_json(rows: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
