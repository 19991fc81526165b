"""``report.html``: the metrics, the sandbox layers in effect, and a per-problem table."""

from __future__ import annotations

import html
import json
from collections import defaultdict

from codemill.evaluate.data import Result, Task

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}.pass{color:#070}.fail{color:#a00}pre{margin:0;white-space:pre-wrap;
max-width:60em;font-size:85%}details summary{cursor:pointer}"""
MAX_ROWS = 2000  # per benchmark; the rest is in results.jsonl


def _e(value) -> str:
    return html.escape(str(value))


def _metric_rows(metrics: dict) -> str:
    rows = []
    for bench, modes in metrics.items():
        if bench == "heldout":
            values = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in modes.items())
            rows.append(f"<tr><td>{_e(bench)}</td><td></td><td>{_e(values)}</td></tr>")
            continue
        for mode, values in modes.items():
            text = ", ".join(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}" for k, v in values.items())
            rows.append(f"<tr><td>{_e(bench)}</td><td>{_e(mode)}</td><td>{_e(text)}</td></tr>")
    return "<table><tr><th>benchmark</th><th>mode</th><th>metrics</th></tr>" + "".join(rows) + "</table>"


def _problem_table(bench: str, results: list[Result], tasks: list[Task] | None) -> str:
    by_task: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_task[r.task_id].append(r)
    order = [t.task_id for t in tasks if t.task_id in by_task] if tasks else list(by_task)
    rows = []
    for task_id in order[:MAX_ROWS]:
        runs = by_task[task_id]
        passed = sum(r.passed for r in runs)
        shown = next((r for r in runs if not r.passed), runs[0])
        css = "pass" if passed == len(runs) else "fail"
        rows.append(
            f"<tr><td>{_e(task_id)}</td><td class='{css}'>{passed}/{len(runs)}</td>"
            f"<td>{_e(shown.mode)} #{shown.index}: {_e(shown.result)}</td>"
            f"<td><details><summary>completion</summary><pre>{_e(shown.completion)}</pre></details></td></tr>"
        )
    more = f"<p>{len(order) - MAX_ROWS} more tasks in results.jsonl.</p>" if len(order) > MAX_ROWS else ""
    return (
        f"<h2>{_e(bench)}: per problem</h2><table><tr><th>task</th><th>passed</th>"
        "<th>first failure (or first sample)</th><th>completion shown</th></tr>" + "".join(rows) + "</table>" + more
    )


def render(metrics: dict, results: list[Result], tasks: dict[str, list[Task]], stats: dict, config) -> str:
    sandbox = stats.get("sandbox", {})
    layers = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sandbox.get("layers", {}).items())
    missing = sandbox.get("missing") or []
    warning = (
        f"<p class='fail'>Unavailable sandbox layers: {_e(', '.join(missing))}</p>"
        if missing
        else "<p class='pass'>All sandbox layers in effect.</p>"
    )
    benches = list(dict.fromkeys(r.benchmark for r in results))
    tables = "".join(_problem_table(b, [r for r in results if r.benchmark == b], tasks.get(b)) for b in benches)
    counts = (
        f"{stats['samples_scored']} samples scored in {stats['seconds']} s with {stats['workers']} workers "
        f"({stats['samples_per_second']} samples/s); {stats['passed']} passed, {stats['timed_out']} timed out, "
        f"{stats['quarantined']} quarantined."
    )
    config_json = _e(json.dumps(getattr(config, "__dict__", {}), sort_keys=True, default=str))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>codemill evaluate</title>"
        f"<style>{STYLE}</style></head><body><h1>codemill evaluate</h1><p>{_e(counts)}</p>"
        f"<h2>Metrics</h2>{_metric_rows(metrics)}<h2>Sandbox</h2><p>interpreter: "
        f"{_e(sandbox.get('python', ''))}; evaluator running as root: {_e(sandbox.get('evaluator_root'))}</p>"
        f"<table>{layers}</table>{warning}{tables}<h2>Config</h2><pre>{config_json}</pre></body></html>\n"
    )
