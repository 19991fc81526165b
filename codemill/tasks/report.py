"""``report.md`` of the tasks stage: the counts, the reasons, and a few tasks of each kind."""

from __future__ import annotations

import json

PROMPT_LINES = 30  # a prompt longer than this is cut in the report (the Parquet holds it whole)


def _fence(text: str) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    shown = lines[-PROMPT_LINES:]
    cut = [f"# ... {len(lines) - len(shown)} lines above not shown"] if len(lines) > len(shown) else []
    return ["```python", *cut, *shown, "```"]


def _examples(tasks: list[dict], kind: str, limit: int) -> list[str]:
    chosen = [t for t in tasks if t["kind"] == kind][:limit]
    lines = [f"## {kind} tasks", ""]
    if not chosen:
        return lines + [f"No {kind} tasks.", ""]
    for t in chosen:
        tests = json.loads(t["tests"])
        lines += [
            f"### `{t['task_id']}` ({t['repo']}/{t['path']}, {t['split']})",
            "",
            "Prompt:",
            "",
            *_fence(t["prompt"]),
            "",
        ]
        if kind == "generate":
            lines += [
                f"Tests: {len(tests)} cases, e.g. `{t['entry_point']}({tests[0]['input'][:100]})` returns "
                f"`{tests[0]['output'][:100]}`.",
                "",
            ]
        else:
            lines += [f"Answer: `{t['answer'][:200]}`", ""]
    return lines


def render_report(stats: dict, tasks: list[dict], examples: int) -> str:
    lines = [
        "# Tasks report",
        "",
        "Execution-verified tasks mined from the corpus: top-level Python functions with a docstring, "
        "screened for impurity, run in the sandbox under several PYTHONHASHSEED values on inputs taken "
        "from their doctests and literal calls in their repository. Expected outputs are what the "
        "reference returned, never the text of an example.",
        "",
    ]
    if stats["python_files"] == 0:
        lines += [
            f"**The input holds no Python files** ({stats['input_rows']} rows read from "
            f"{stats['input']}): no candidates, zero tasks.",
            "",
        ]
    elif stats["tasks"] == 0:
        lines += ["**No tasks**: no candidate made it through the checks (see the reasons below).", ""]
    lines += [
        "| | count |",
        "|---|---:|",
        f"| repositories | {stats['repos']} |",
        f"| Python files | {stats['python_files']} |",
        f"| files that do not parse | {stats['files_unparsable']} |",
        f"| candidates (documented top-level functions) | {stats['candidates']} |",
        f"| functions kept | {stats['functions_kept']} |",
        f"| quarantined | {stats['quarantined']} |",
        f"| tasks | {stats['tasks']} |",
        f"| test cases (before dedup) | {stats['cases']} |",
        f"| examples whose stated result disagrees with the reference | {stats['examples_disagreeing']} |",
        f"| generate tasks left out: the docstring's example is wrong | {stats['generate_skipped_wrong_doctest']} |",
        "",
        "Tasks by kind: "
        + (", ".join(f"{k} {v}" for k, v in stats["by_kind"].items()) or "none")
        + "; by split: "
        + ", ".join(f"{k} {v}" for k, v in stats["by_split"].items())
        + ".",
        "",
        f"Counts add up (candidates = kept + quarantined): {'yes' if stats['invariant_ok'] else 'NO'}.",
        "",
        "## Quarantine reasons",
        "",
    ]
    lines += ["| reason | candidates |", "|---|---:|"] + [f"| {r} | {n} |" for r, n in stats["by_reason"].items()]
    if not stats["by_reason"]:
        lines.append("| (none) | 0 |")
    lines.append("")
    if stats["disagreeing_examples"]:
        lines += [
            "## Examples that disagree with the reference",
            "",
            "| function | input | stated | returned | where |",
            "|---|---|---|---|---|",
        ]
        for e in stats["disagreeing_examples"][:10]:
            cells = [
                f"{e['repo']}:{e['entry_point']}",
                e["input"][:60],
                e["claimed"][:60],
                e["returned"][:60],
                e["origin"],
            ]
            lines.append("| " + " | ".join(f"`{' '.join(c.split())}`".replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    for kind in stats["config"].get("kinds", []):
        lines += _examples(tasks, kind, examples)
    return "\n".join(lines) + "\n"
