"""The model step of evaluate (GPU in the pipeline): completions for every code benchmark,
and the held-out FIM exact match and perplexity, which need the model too.

Writes into the stage's output folder:

- ``samples/<benchmark>.jsonl``: one Sample per line (greedy, plus ``n_samples`` sampled
  completions per problem for humaneval and stdio), read back by the score step;
- ``samples/heldout_fim.jsonl``: the held-out spans with their exact-match verdicts;
- ``generation.json``: counts, truncated prompts, held-out metrics, timing.
"""

from __future__ import annotations

import sys

from codemill import io
from codemill.evaluate import benchmarks, chat, humaneval, infilling, mined
from codemill.evaluate.config import CODE_BENCHMARKS, EvalConfig
from codemill.evaluate.data import Sample, Task, write_jsonl
from codemill.stage import Timer, log_config, numeric_metrics
from codemill.tracking import Tracker


def generate(config: EvalConfig, model: str, pack: str, output: str, tracker: Tracker, tasks_url: str = "") -> dict:
    """Generate completions (and held-out metrics) with the model at ``model``, and for the
    held-out split of the tasks at ``tasks_url`` when given; returns the stats also written to
    ``generation.json``."""
    import torch

    from codemill.evaluate import heldout
    from codemill.evaluate.generation import Generator

    config.ensure_valid()
    log_config("evaluate.generate", config, tracker)
    with Timer() as timer:
        gen = Generator(model, config.device, config.dtype)
        _set_threads(torch, gen, config)
        stats: dict = {"model": model, "device": gen.device, "context": gen.context, "benchmarks": {}}
        for name in [b for b in CODE_BENCHMARKS if b in config.benchmarks]:
            tasks, _ = benchmarks.load_tasks(name, config)
            samples, info = _complete(gen, name, tasks, config)
            write_jsonl(io.join(output, "samples", f"{name}.jsonl"), samples)
            stats["benchmarks"][name] = info
        if tasks_url:
            stats["benchmarks"][mined.NAME] = mined.generate(gen, tasks_url, config, output)
        if "heldout" in config.benchmarks:
            stats["heldout"] = _heldout(gen, heldout, pack, output, config)
    stats["seconds"] = round(timer.seconds, 3)
    io.write_json(io.join(output, "generation.json"), stats)
    tracker.log_metrics(numeric_metrics({k: v for k, v in stats.items() if k != "context"}, prefix="generation."))
    return stats


def _set_threads(torch, gen, config: EvalConfig) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
    elif gen.device == "cpu" and sum(p.numel() for p in gen.model.parameters()) < 100_000_000:
        # Small models: intra-op threads cost more than they save, and on a busy machine
        # their spin-waits slow every step by orders of magnitude.
        torch.set_num_threads(1)


def _complete(gen, name: str, tasks: list[Task], config: EvalConfig) -> tuple[list[Sample], dict]:
    if name == infilling.NAME:
        max_new = min(config.max_new_tokens, benchmarks.INFILL_MAX_NEW_TOKENS)
        budget = gen.budget(max_new)
        encoded = [gen.encode_fim(t.prompt, t.suffix, budget) for t in tasks]
        texts = gen.complete(
            [ids for ids, _ in encoded], max_new, max_lines=[1] * len(tasks), batch_size=config.batch_size, desc=name
        )
        samples = [Sample(name, t.task_id, infilling.first_line(text)) for t, text in zip(tasks, texts)]
        return samples, {
            "tasks": len(tasks),
            "samples": len(samples),
            "prompts_truncated": sum(cut for _, cut in encoded),
        }
    stop = benchmarks.stop_sequences(name)
    as_chat = config.prompt_style == "chat" and name == humaneval.NAME
    if as_chat:  # instruct mode: EvalPlus's instruction, the reply ends at the closing fence
        stop = chat.STOP
        encoded = [gen.fit(gen.encode_chat(*chat.humaneval_turns(t.prompt)), config.max_new_tokens) for t in tasks]
    else:
        encoded = [gen.fit(gen.encode(t.prompt), config.max_new_tokens) for t in tasks]
    prompts = [ids for ids, _ in encoded]
    texts = gen.complete(prompts, config.max_new_tokens, stop, batch_size=config.batch_size, desc=f"{name} greedy")
    texts = [chat.extract_code(t) for t in texts] if as_chat else texts
    samples = [Sample(name, t.task_id, text) for t, text in zip(tasks, texts)]
    if config.n_samples:
        n = config.n_samples
        texts = gen.complete(
            [p for p in prompts for _ in range(n)],
            config.max_new_tokens,
            stop,
            sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
            batch_size=config.batch_size,
            desc=f"{name} sampled",
        )
        texts = [chat.extract_code(t) for t in texts] if as_chat else texts
        samples += [
            Sample(name, t.task_id, texts[i * n + j], "sampled", j) for i, t in enumerate(tasks) for j in range(n)
        ]
    return samples, {
        "tasks": len(tasks),
        "samples": len(samples),
        "prompt_style": "chat" if as_chat else "completion",
        "prompts_truncated": sum(cut for _, cut in encoded),
    }


def _heldout(gen, heldout, pack: str, output: str, config: EvalConfig) -> dict:
    if not pack:
        print(
            "[evaluate] heldout: no pack output given, FIM exact match and perplexity skipped",
            file=sys.stderr,
            flush=True,
        )
        return {"skipped": "no pack output given"}
    docs = heldout.load_documents(pack)
    spans = heldout.choose_spans(docs, config.heldout_spans, config.fim_span_lines, config.seed)
    rows = heldout.fim_exact_match(gen, spans, config.max_new_tokens, config.batch_size) if spans else []
    write_jsonl(io.join(output, "samples", f"{heldout.NAME}.jsonl"), rows)
    result = {
        "documents": len(docs),
        "fim_spans": len(rows),
        "fim_exact_match": sum(r.passed for r in rows) / len(rows) if rows else 0.0,
    }
    result.update(heldout.perplexity(gen, pack, config.ppl_sequences))
    return result
