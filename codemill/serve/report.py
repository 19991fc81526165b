"""``report.md`` of the serve step: the decision first, then the evidence for it."""

from __future__ import annotations

import json


def _gate_table(gate: dict) -> list[str]:
    lines = ["| metric | value | rules | result |", "|---|---|---|---|"]
    for c in gate["checks"]:
        value = "—" if c["value"] is None else f"{c['value']:g}"
        lines.append(
            f"| `{c['metric']}` | {value} | `{json.dumps(c['rules'])}` | "
            f"{'pass' if c['passed'] else 'FAIL: ' + c['reason']} |"
        )
    return lines


def _num(value) -> str:
    return "—" if value is None else f"{value:g}"


def _champion_lines(champion: dict | None) -> list[str]:
    if not champion:
        return ["Not compared."]
    if "checks" not in champion:
        return [champion["note"]]
    lines = [
        f"Champion: `{champion['model_uri']}`; max_regression {champion['max_regression']:g}.",
        "",
        "| metric | better | challenger | champion | allowed | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in champion["checks"]:
        result = (
            "pass"
            if c["passed"] and c["allowed"] is not None
            else ("not compared" if c["passed"] else "REFUSED: " + c["reason"])
        )
        lines.append(
            f"| `{c['metric']}` | {c['direction']} | {_num(c['challenger'])} | {_num(c['champion'])} | "
            f"{_num(c['allowed'])} | {result} |"
        )
    return lines


def _registry_lines(reg: dict | None) -> list[str]:
    if not reg:
        return ["Not reached (the gate refused the model)."]
    if "skipped" in reg:
        return [reg["skipped"]]
    moved = (
        f"`@{reg['alias']}` now points at version {reg['version']}"
        if reg["alias_moved"]
        else f"`@{reg['alias']}` left at version {reg['previous_alias_version'] or '(none)'}"
    )
    return [f"- registered `{reg['model_uri']}` (files: `{reg['source']}`)", f"- {moved}"]


def _smoke_lines(smoke: dict | None) -> list[str]:
    if not smoke:
        return ["Not run."]
    lines = [f"Server: `{smoke.get('url', '?')}`; passed: **{smoke['passed']}**"]
    if "ready_s" in smoke:
        lines.append(f"Ready after {smoke['ready_s']:.2f} s (`/ready`).")
    if "rollout" in smoke:
        lines.append(f"Rollout: {smoke['rollout']['status']} in {smoke['rollout']['seconds']} s.")
    if smoke.get("error"):
        lines.append(f"Error: `{smoke['error']}`")
    if smoke.get("rolled_back_to"):
        lines.append(f"Rolled the Deployment back to `{smoke['rolled_back_to']}`.")
    if smoke.get("requests"):
        lines += ["", "| request | status | latency (s) | finish_reason | text |", "|---|---|---|---|---|"]
        for r in smoke["requests"]:
            text = json.dumps(r["text"][:60])
            lines.append(f"| {r['name']} | {r['status']} | {r['latency_s']} | {r['finish_reason']} | `{text}` |")
    return lines


def render_report(stats: dict) -> str:
    out = [
        "# serve",
        "",
        f"**Decision:** {stats['decision']}",
        "",
        f"Model: `{stats['model']}`; target: {stats['target']}",
        "",
        "## Gate",
        "",
    ] + _gate_table(stats["gate"])
    out += ["", "## Champion versus challenger", ""] + _champion_lines(stats.get("champion"))
    out += ["", "## Registry", ""] + _registry_lines(stats["registry"])
    out += ["", "## Smoke", ""] + _smoke_lines(stats["smoke"])
    out += ["", "## Serve it by hand", "", "```", stats["serve_command"], "```", ""]
    return "\n".join(out)
