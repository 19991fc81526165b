"""``codemill eval --samples FILE.jsonl --benchmark tasks --tasks DIR``: score a samples file
against mined tasks with :mod:`codemill.tasks.score`, writing what evaluate writes.

- ``results.jsonl``: one row per sample, in file order: benchmark (``tasks``), task_id,
  mode, index, completion, passed, result (the detail), and ``fraction`` and ``kind``;
- ``metrics.json``: ``{"tasks": {mode: {pass@k..., tasks_total, fraction, by_kind}}}``;
- ``report.html`` (evaluate's), ``stats.json`` and ``quarantine.jsonl`` for sample rows
  that could not be used (unknown task, no completion).

With ``--sandbox-url`` the samples are scored on the sandbox service
(:func:`codemill.evaluate.remote.task_results`): the same results.jsonl and metrics.json.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from codemill import io
from codemill.evaluate import metric, report
from codemill.evaluate.config import EvalConfig
from codemill.evaluate.data import Result as EvalResult
from codemill.evaluate.data import Task as EvalTask
from codemill.evaluate.data import read_samples
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.stage import InputError, Timer, log_config, numeric_metrics
from codemill.tasks.score import load_tasks, score
from codemill.tracking import Tracker

NAME = "tasks"


def _metrics(
    results: list[EvalResult], fractions: list[float], kinds: list[str], ks: list[int], tasks_total: int
) -> dict:
    out: dict = {}
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [i for i, r in enumerate(results) if r.mode == mode]
        values = metric.aggregate([results[i] for i in rows], ks)
        values["tasks_total"] = tasks_total
        values["fraction"] = sum(fractions[i] for i in rows) / len(rows)
        values["by_kind"] = {
            kind: metric.aggregate([results[i] for i in rows if kinds[i] == kind], ks)
            for kind in sorted({kinds[i] for i in rows})
        }
        out[mode] = values
    return {NAME: out}


def score_samples(config: EvalConfig, samples: str, tasks_url: str, output: str, tracker: Tracker) -> dict:
    """Score ``samples`` (``task_id``, ``completion`` per line) against the tasks at ``tasks_url``."""
    if not tasks_url:
        raise InputError("--benchmark tasks needs --tasks DIR (the tasks stage's output)")
    config.ensure_valid()
    log_config("evaluate.score", config, tracker)
    tasks = load_tasks(tasks_url)
    by_id = {t.task_id: t for t in tasks}
    rows, quarantine = read_samples(samples, NAME, by_id)
    limits = Limits(timeout=config.timeout, memory_mb=config.memory_mb, output_bytes=config.output_bytes)
    if config.sandbox_url:
        from codemill.evaluate import remote

        with Timer() as timer:
            isolation = remote.isolation(config.sandbox_url)
            verdicts = remote.task_results(config, tasks, [(s.task_id, s.completion) for s in rows])
    else:
        with Timer() as timer, Sandbox(limits, config.sandbox_python, config.require_isolation, hash_seed="0") as box:
            isolation = dict(box.isolation, python=box.python)
            verdicts = score(
                tasks, [(s.task_id, s.completion) for s in rows], config.parallel_runs, box, config.timeout
            )
    results = [
        EvalResult(NAME, s.task_id, s.mode, s.index, s.completion, v.passed, v.detail) for s, v in zip(rows, verdicts)
    ]
    metrics = _metrics(results, [v.fraction for v in verdicts], [v.kind for v in verdicts], config.k, len(tasks))
    stats = {
        **metrics,
        "samples_scored": len(results),
        "passed": sum(r.passed for r in results),
        "timed_out": sum(r.result.startswith("timed out") for r in results),
        "quarantined": len(quarantine),
        "by_reason": dict(Counter(q["reason"] for q in quarantine)),
        "workers": config.parallel_runs,
        "seconds": round(timer.seconds, 3),
        "samples_per_second": round(len(results) / timer.seconds, 2) if results else 0.0,
        "sandbox": isolation,
    }
    lines = [
        json.dumps(
            {**dataclasses.asdict(r), "fraction": v.fraction, "kind": v.kind}, ensure_ascii=False, sort_keys=True
        )
        for r, v in zip(results, verdicts)
    ]
    io.write_text(io.join(output, "results.jsonl"), "".join(line + "\n" for line in lines))
    io.write_json(io.join(output, "metrics.json"), metrics)
    if quarantine:
        io.write_text(
            io.join(output, "quarantine.jsonl"), "".join(json.dumps(q, sort_keys=True) + "\n" for q in quarantine)
        )
    shown = {NAME: [EvalTask(NAME, t.task_id, t.prompt, entry_point=t.entry_point) for t in tasks]}
    io.write_text(io.join(output, "report.html"), report.render(metrics, results, shown, stats, config))
    io.write_json(io.join(output, "stats.json"), stats)
    tracker.log_metrics({k.replace("@", "_at_"): v for k, v in numeric_metrics(metrics).items()})
    return stats
