"""The tasks stage's held-out split as a benchmark of ``codemill eval --model M --tasks DIR``.

Generation (the model step) writes ``samples/tasks.jsonl`` for every ``split == heldout``
task (greedy, pass@1); scoring goes through the tasks stage's one scorer
(:func:`codemill.tasks.score.score`, its sandbox and strict comparison) and lands in the same
``results.jsonl``, ``metrics.json`` (``tasks: {greedy: {pass@1, tasks_total, by_kind}}``) and
report as the other benchmarks. With ``--sandbox-url`` the samples are scored on the sandbox
service instead (:func:`codemill.evaluate.remote.task_results`), with the same results.

Prompts by ``--prompt-style``:

- ``chat``: the task's prompt is the user turn, as ``codemill sft`` trains (a generate
  task's answer is a ```python block); the whole reply goes to the scorer, which takes
  the fenced block (generate) or the literal / assertion (output, input);
- ``completion``: a generate prompt is continued HumanEval-style (Codex's stop sequences);
  an output/input prompt (the function, then ``assert f(x) == ??``) is continued after
  ``# Answer:`` for one line, which the scorer reads as a literal or an assertion.
"""

from __future__ import annotations

import sys

from codemill import io
from codemill.evaluate import humaneval, metric
from codemill.evaluate.config import EvalConfig
from codemill.evaluate.data import Result, Sample, read_samples, write_jsonl

NAME = "tasks"
ANSWER_CUE = "# Answer:\n"


def load_heldout(url: str) -> list:
    from codemill.tasks.score import load_tasks

    return [t for t in load_tasks(url) if t.split == "heldout"]


def generate(gen, url: str, config: EvalConfig, output: str) -> dict:
    """Greedy completions for the held-out tasks at ``url``; returns generation.json's entry."""
    tasks = load_heldout(url)
    if not tasks:
        print(f"[evaluate] tasks: {url} has no held-out tasks; nothing to generate", file=sys.stderr, flush=True)
    chat = config.prompt_style == "chat"
    samples: list[Sample] = []
    truncated = 0
    for kinds, stop, lines in (({"generate"}, humaneval.STOP, None), ({"output", "input"}, ("\n\n",), 1)):
        group = [t for t in tasks if t.kind in kinds]
        if not group:
            continue
        if chat:
            encoded = [
                gen.fit(gen.encode_chat([{"role": "user", "content": t.prompt}]), config.max_new_tokens) for t in group
            ]
            stop, lines = (), None  # the reply ends at the end of the assistant's turn
        else:
            cue = "" if "generate" in kinds else ANSWER_CUE
            encoded = [gen.fit(gen.encode(t.prompt + cue), config.max_new_tokens) for t in group]
        texts = gen.complete(
            [ids for ids, _ in encoded],
            config.max_new_tokens,
            stop,
            max_lines=[lines] * len(group) if lines else None,
            batch_size=config.batch_size,
            desc=f"tasks {'/'.join(sorted(kinds))}",
        )
        samples += [Sample(NAME, t.task_id, text) for t, text in zip(group, texts)]
        truncated += sum(cut for _, cut in encoded)
    write_jsonl(io.join(output, "samples", f"{NAME}.jsonl"), samples)
    by_kind: dict[str, int] = {}
    for t in tasks:
        by_kind[t.kind] = by_kind.get(t.kind, 0) + 1
    return {
        "url": url,
        "tasks": len(tasks),
        "samples": len(samples),
        "by_kind": by_kind,
        "prompts_truncated": truncated,
        "prompt_style": config.prompt_style,
    }


def score(config: EvalConfig, output: str, generation: dict) -> tuple[dict, list[Result], list[dict]]:
    """``({"tasks": metrics}, results, quarantine)`` for what :func:`generate` wrote; empty when
    the generate step was given no tasks."""
    info = generation.get("benchmarks", {}).get(NAME)
    url = io.join(output, "samples", f"{NAME}.jsonl")
    if not info or not io.exists(url):
        return {}, [], []
    from codemill.evaluate.sandbox import Limits, Sandbox
    from codemill.tasks.score import score as score_tasks

    tasks = load_heldout(info["url"])
    by_id = {t.task_id: t for t in tasks}
    samples, quarantine = read_samples(url, NAME, by_id) if tasks else ([], [])
    limits = Limits(timeout=config.timeout, memory_mb=config.memory_mb, output_bytes=config.output_bytes)
    if config.sandbox_url:  # the service's sandbox runs under PYTHONHASHSEED 0 too (its default)
        from codemill.evaluate import remote

        verdicts = remote.task_results(config, tasks, [(s.task_id, s.completion) for s in samples])
    else:
        # expected outputs were recorded under PYTHONHASHSEED 0 (codemill.tasks.score), so samples run under it too
        with Sandbox(limits, config.sandbox_python, config.require_isolation, hash_seed="0") as box:
            verdicts = score_tasks(
                tasks, [(s.task_id, s.completion) for s in samples], config.parallel_runs, box, config.timeout
            )
    results = [
        Result(NAME, s.task_id, s.mode, s.index, s.completion, v.passed, v.detail) for s, v in zip(samples, verdicts)
    ]
    return {NAME: metrics(results, [by_id[r.task_id].kind for r in results], config.k, len(tasks))}, results, quarantine


def metrics(results: list[Result], kinds: list[str], ks: list[int], tasks_total: int) -> dict:
    """Per mode: pass@k over all held-out tasks, and per kind (generate, output, input)."""
    out: dict = {}
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [i for i, r in enumerate(results) if r.mode == mode]
        values = metric.aggregate([results[i] for i in rows], ks)
        values["tasks_total"] = tasks_total
        values["by_kind"] = {
            kind: metric.aggregate([results[i] for i in rows if kinds[i] == kind], ks)
            for kind in sorted({kinds[i] for i in rows})
        }
        out[mode] = values
    return out or {"greedy": {"tasks": 0, "samples": 0, "tasks_total": tasks_total}}
