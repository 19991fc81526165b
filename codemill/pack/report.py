"""report.md of the pack stage: the numbers, the languages, and one example of each format."""

from __future__ import annotations

from codemill.pack.config import PackConfig

EXAMPLE_CHARS = 1200  # of each example shown; the full text is one `codemill inspect` away


def _fence(text: str) -> str:
    shown = (
        text
        if len(text) <= EXAMPLE_CHARS
        else text[:EXAMPLE_CHARS] + f"\n… ({len(text) - EXAMPLE_CHARS} more characters)"
    )
    fence = "`" * max(3, _longest_run(shown, "`") + 1)
    return f"{fence}text\n{shown}\n{fence}"


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        best = max(best, run)
    return best


def render_report(stats: dict, config: PackConfig, examples: dict[str, dict], orders: list[dict | None]) -> str:
    s = stats
    lines = [
        "# pack",
        "",
        f"{s['documents']:,} documents ({s['repo_documents']:,} repository documents in dependency order, "
        f"{s['file_documents']:,} single-file documents) from {s['files']:,} files of "
        f"{sum(s['repos'].values()):,} repositories ({s['repos']['val']:,} held out for validation).",
        "",
        "| | train | val | total |",
        "|---|---:|---:|---:|",
    ]
    for key in ("documents", "units", "sequences", "tokens", "pad_tokens"):
        lines.append(f"| {key} | {s['splits']['train'][key]:,} | {s['splits']['val'][key]:,} | {s[key]:,} |")
    lines += [
        "",
        f"- sequence length {config.seq_len}; packing efficiency (non-pad / all tokens) "
        f"**{s['packing_efficiency']:.4f}**; {s.get('split_documents', 0):,} documents longer than a row split "
        f"(no other is: {s.get('fim_to_plain', 0):,} drawn FIM that fit a row only as plain text were packed plain)",
        f"- FIM rate {s['fim_rate_observed']:.4f} observed (config {config.fim_rate}); SPM share of FIM "
        f"{s['spm_share_observed']:.4f} (config {config.spm_rate}); units plain/psm/spm: "
        f"{s['formats']['plain']:,} / {s['formats']['psm']:,} / {s['formats']['spm']:,}",
        f"- tokenizer: {s['tokenizer']['source']}, vocabulary {s['tokenizer']['vocab_size']:,}"
        + (f", added {', '.join(s['tokenizer']['added_tokens'])}" if s["tokenizer"]["added_tokens"] else ""),
        f"- dependency graph: {s['dependency_edges']:,} in-repository edges, {s['cycles_broken']:,} cycles broken; "
        f"files in repository-level documents by family: "
        + (", ".join(f"{k} {v:,}" for k, v in s["repo_level_files"].items()) or "none"),
        "- skipped records: " + (", ".join(f"{k} {v:,}" for k, v in s["skipped"].items()) or "none"),
        "",
        "## Languages",
        "",
        "| language | files | documents | units | tokens |",
        "|---|---:|---:|---:|---:|",
    ]
    for lang, c in sorted(s["languages"].items(), key=lambda kv: -kv[1]["tokens"]):
        lines.append(f"| {lang} | {c['files']:,} | {c['documents']:,} | {c['units']:,} | {c['tokens']:,} |")
    order = max((o for o in orders if o), key=lambda o: len(o["paths"]), default=None)
    if order:
        lines += [
            "",
            "## Dependency order",
            "",
            f"The first files of `{order['repo']}`'s {order['language']} document "
            f"({order['files']} files), dependencies first:",
            "",
        ]
        lines += [f"{i + 1}. `{p}`" for i, p in enumerate(order["paths"])]
    lines += [
        "",
        "## Examples",
        "",
        "One unit of each format as the model sees it (BOS/EOS and FIM sentinels spelled out). "
        "`codemill inspect DIR` shows more.",
    ]
    for fmt in ("plain", "psm", "spm"):
        ex = examples.get(fmt)
        if ex:
            lines += [
                "",
                f"### {fmt}: `{ex['repo']}` ({ex['language']}, {ex['split']} sequence {ex['sequence']}, "
                f"{ex['length']} tokens)",
                "",
                _fence(ex["text"]),
            ]
    return "\n".join(lines) + "\n"
