"""The steps DeepSeek-R1's chain needs beyond the stages themselves (docs/pipelines.md, "r1").

- :func:`served_synth`: synth in distill mode whose teacher is a model this run trained,
  served for the length of the step (:mod:`codemill.serve.local`);
- :func:`sft_or_skip`: sft on the data folders that kept samples (a synth step skipped for
  want of a teacher, or one whose answers all failed, is left out), or, when none did (the
  tiny local models rarely write a passing answer), a recorded skip that hands the base
  model on unchanged, so the chain goes on and the report says which stage learned nothing;
- :func:`compare_step`: every stage's model side by side (pass@1 per benchmark, response
  length, pass rate on the mined tasks' held-out split), each registered as its own MLflow
  version tagged with its stage; the best one is what the gated rollout gets.
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from dataclasses import dataclass, field

from codemill import io
from codemill.stage import InputError, write_stats
from codemill.tracking import Tracker

BENCHMARK_ORDER = ("humaneval", "stdio", "tasks", "humaneval_infill")


def problems_file(problems: str) -> str:
    """The ``problems`` pipeline parameter as a file: "bundled" is evaluate's 13 shipped problems."""
    from codemill.evaluate import stdio

    return stdio.SHIPPED_PROBLEMS if problems == "bundled" else problems


# ---------------------------------------------------------------------------- the served teacher


def _teacher(model: str, target: str, deployment: dict, log_path: str, tracking_uri: str):
    from codemill.serve import local

    if target == "auto":
        target = "kubernetes" if os.environ.get("KUBERNETES_SERVICE_HOST") else "local"
    if target == "local":
        return local.local_teacher(model, log_path, tracking_uri)
    if target != "kubernetes":
        raise InputError(f"teacher target must be auto, local or kubernetes, got {target!r}")
    unknown = set(deployment) - set(local.TeacherDeployment.__dataclass_fields__)
    if unknown:
        raise InputError(f"teacher_deployment: unknown keys {sorted(unknown)}")
    settings = {
        "namespace": os.environ.get("CODEMILL_NAMESPACE", "codemill"),
        "deployment": "codemill-teacher",
        "service_url": "http://codemill-teacher.codemill.svc.cluster.local:8000",
        **deployment,
    }
    return local.kube_teacher(model, local.TeacherDeployment(**settings))


def served_synth(
    teacher_dir: str,
    output: str,
    options: dict,
    seed: int,
    tasks: str,
    problems: str,
    target: str,
    deployment: dict,
    tracking_uri: str,
    parent_run_id: str,
) -> dict:
    """Serve ``<teacher_dir>/model``, run synth distill against it, stop it; returns synth's stats."""
    from codemill import runner

    with tempfile.TemporaryDirectory(prefix="codemill-teacher-log-") as tmp:
        log_path = os.path.join(tmp, "teacher.log")
        try:
            with _teacher(io.join(teacher_dir, "model"), target, deployment, log_path, tracking_uri) as served:
                name = "codemill" if served["target"] == "local" else (options or {}).get("teacher_model", "teacher")
                stats = runner.from_kfp(
                    "synth",
                    {k: v for k, v in (options or {}).items() if k != "teacher_model"},
                    output=output,
                    tracking_uri=tracking_uri,
                    parent_run_id=parent_run_id,
                    overrides={"mode": "distill", "teacher_url": served["url"], "teacher_model": name, "seed": seed},
                    tasks=tasks or None,
                    problems=problems_file(problems) or None,
                )
        finally:
            if os.path.exists(log_path):
                io.write_bytes(io.join(output, "teacher.log"), io.read_bytes(log_path))
    stats["teacher"] = {k: v for k, v in served.items() if k != "url"} | {"stage": teacher_dir}
    write_stats(output, stats)
    return stats


# ---------------------------------------------------------------------------- sft on what exists


def usable_folders(data_dirs: str) -> tuple[list[str], dict[str, str]]:
    """The folders of ``data_dirs`` (comma-separated) that hold samples, and why each other one does not.

    Read from each folder's stats.json: synth's ``skipped`` and ``kept``, tasks' ``tasks``.
    """
    keep, left_out = [], {}
    for folder in [d.strip() for d in data_dirs.split(",") if d.strip()]:
        url = io.join(folder, "stats.json")
        stats = io.read_json(url) if io.exists(url) else None
        if not isinstance(stats, dict):
            left_out[folder] = "no stats.json"
        elif stats.get("skipped"):
            left_out[folder] = f"skipped: {stats.get('reason', '')}"
        elif int(stats.get("kept", stats.get("tasks", 0)) or 0) == 0:
            left_out[folder] = "kept 0 samples"
        else:
            keep.append(folder)
    return keep, left_out


def skip_sft(model_dir: str, left_out: dict, output: str, tracking_uri: str = "") -> dict:
    """Record that there was nothing to train on and hand ``model_dir`` on as this stage's model/."""
    from codemill.serve.model_source import fetch_model

    reason = "no training examples: " + "; ".join(f"{k}: {v}" for k, v in left_out.items())
    with tempfile.TemporaryDirectory(prefix="codemill-sft-skip-") as tmp:
        local = fetch_model(model_dir, tmp, tracking_uri)
        if io.is_s3(output):
            io.upload_dir(local, io.join(output, "model"))
        else:
            target = io.join(output, "model")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(local, target)
    stats = {"skipped": True, "reason": reason, "model_from": model_dir, "examples": 0, "left_out": left_out}
    write_stats(output, stats)
    io.write_text(io.join(output, "report.md"), f"# sft\n\nSkipped: {reason}. `model/` is `{model_dir}` unchanged.\n")
    print(f"[sft] skipped: {reason}; model/ is {model_dir}", flush=True)
    return stats


def sft_or_skip(
    model_dir: str, data: str, output: str, preset: str, options: dict, seed: int, tracking_uri: str, parent_run_id: str
) -> dict:
    """sft on the folders of ``data`` that hold samples; a recorded skip when none does."""
    from codemill import runner

    folders, left_out = usable_folders(data)
    if not folders:
        return skip_sft(model_dir, left_out, output, tracking_uri)
    if left_out:
        print(f"[sft] left out: {left_out}", flush=True)
    stats = runner.from_kfp(
        "sft",
        options,
        overrides={"preset": preset, "seed": seed},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        model=model_dir,
        data=",".join(folders),
        registry_uri=tracking_uri,
    )
    stats = {**stats, "left_out": left_out}
    write_stats(output, {**io.read_json(io.join(output, "stats.json")), "left_out": left_out})
    return stats


# ---------------------------------------------------------------------------- the comparison


@dataclass
class CompareConfig:
    stages: list[str] = field(default_factory=list, metadata={"help": "the stages whose models are compared"})
    registered_model: str = field(
        default="codemill-r1",
        metadata={"help": "MLflow registered model each stage's model becomes a version of (tagged codemill.stage)"},
    )
    rank_by: list[str] = field(
        default_factory=lambda: ["humaneval", "tasks", "stdio"],
        metadata={"help": "benchmarks whose greedy pass@1 picks the best model, in order (ties: the later stage)"},
    )

    def ensure_valid(self) -> CompareConfig:
        if not self.stages:
            raise InputError("r1-compare: needs the stages to compare")
        return self


def _response_lengths(eval_dir: str) -> dict[str, float]:
    from codemill.evaluate.data import read_jsonl

    url = io.join(eval_dir, "results.jsonl")
    if not io.exists(url):
        return {}
    by: dict[str, list[int]] = {}
    for row in read_jsonl(url)[0]:
        if row.get("mode") == "greedy" and row.get("benchmark") != "heldout_fim":
            by.setdefault(row["benchmark"], []).append(len(row.get("completion") or ""))
    return {k: sum(v) / len(v) for k, v in sorted(by.items()) if v}


def stage_row(run_dir: str, stage: str) -> dict:
    model_dir, eval_dir = io.join(run_dir, stage), io.join(run_dir, f"{stage}_evaluate")
    metrics_url = io.join(eval_dir, "metrics.json")
    if not io.exists(metrics_url):
        raise InputError(f"{metrics_url}: missing (the {stage} model was not evaluated)")
    metrics, stats = io.read_json(metrics_url), io.read_json(io.join(model_dir, "stats.json"))
    pass1 = {
        b: metrics[b]["greedy"].get("pass@1")
        for b in BENCHMARK_ORDER
        if isinstance(metrics.get(b), dict) and isinstance(metrics[b].get("greedy"), dict)
    }
    return {
        "stage": stage,
        "model": io.join(model_dir, "model"),
        "eval_dir": eval_dir,
        "stage_dir": model_dir,
        "pass@1": pass1,
        "response_chars": _response_lengths(eval_dir),
        "skipped": bool(stats.get("skipped")),
        "skip_reason": stats.get("reason", ""),
        "rl_pass_rate": stats.get("pass_rate_last"),
        "metrics": metrics,
    }


def best_row(rows: list[dict], rank_by: list[str]) -> dict:
    def key(item):
        i, row = item
        return tuple(row["pass@1"].get(b) or 0.0 for b in rank_by) + (i,)

    return max(enumerate(rows), key=key)[1]


def _register(tracker: Tracker, row: dict, name: str) -> dict:
    from codemill.serve import registry
    from codemill.serve.gate import comparable_metrics

    with tempfile.TemporaryDirectory(prefix="codemill-r1-register-") as tmp:
        tracker.log_artifacts(io.download_dir(row["model"], tmp), f"models/{row['stage']}")
    source = tracker.client.get_run(tracker.run_id).info.artifact_uri.rstrip("/") + f"/models/{row['stage']}"
    version = registry.register(
        tracker.client,
        tracker.run_id,
        source,
        name,
        tags={
            "codemill.stage": row["stage"],
            "codemill.source": row["model"],
            **registry.metrics_tag(comparable_metrics(row["metrics"])),
        },
    )
    return {"name": name, "version": version, "model_uri": f"models:/{name}/{version}"}


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(rows: list[dict], best: dict) -> tuple[str, str]:
    """(Markdown, HTML) of the comparison table."""
    benches = [b for b in BENCHMARK_ORDER if any(b in r["pass@1"] for r in rows)]
    head = (
        ["stage"]
        + [f"{b} pass@1" for b in benches]
        + [f"{b} chars" for b in benches]
        + ["rl pass rate", "version", "note"]
    )
    body = []
    for r in rows:
        version = (r.get("registry") or {}).get("version", "-")
        note = ("best; " if r is best else "") + (f"skipped: {r['skip_reason']}" if r["skipped"] else "")
        body.append(
            [r["stage"]]
            + [_fmt(r["pass@1"].get(b)) for b in benches]
            + [_fmt(r["response_chars"].get(b), 0) for b in benches]
            + [_fmt(r["rl_pass_rate"]), version, note]
        )
    md = ["# r1: the stages side by side", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(map(str, b)) + " |" for b in body
    ]
    md += [
        "",
        f"Best by greedy pass@1 ({', '.join(benches)}): **{best['stage']}** ({best['model']}); "
        "the gated rollout decides whether it serves.",
        "",
    ]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in b) + "</tr>" for b in body)
    page = (
        f"<html><body><h1>r1: the stages side by side</h1><table border='1'><tr>{cells}</tr>{trs}</table>"
        f"<p>Best: <b>{html.escape(best['stage'])}</b></p></body></html>"
    )
    return "\n".join(md), page


def compare_step(config: CompareConfig, ctx) -> dict:
    """Read each stage's model and evaluation under ``run_dir``; register, compare, pick the best."""
    run_dir = ctx.input("run_dir")
    rows = [stage_row(run_dir, s) for s in config.stages]
    for row in rows:
        row["registry"] = _register(ctx.tracker, row, config.registered_model) if ctx.tracker.enabled else None
    best = best_row(rows, config.rank_by)
    md, page = render(rows, best)
    io.write_text(io.join(ctx.output, "report.md"), md)
    io.write_text(io.join(ctx.output, "report.html"), page)
    ctx.tracker.log_text(md, "comparison.md")
    ctx.tracker.log_text(page, "comparison.html")
    for row in rows:
        ctx.tracker.log_metrics(
            {f"{row['stage']}.{b}.pass_at_1": v for b, v in row["pass@1"].items() if isinstance(v, (int, float))}
        )
    stats = {
        "stages": [{k: v for k, v in r.items() if k != "metrics"} for r in rows],
        "best": {k: best[k] for k in ("stage", "model", "eval_dir", "stage_dir")},
    }
    write_stats(ctx.output, stats)
    return stats
