"""The ``synth`` step: ask the teacher, verify every answer in the sandbox, write the contract.

With ``--sandbox-url`` every execution goes to the sandbox service (``service.py``).
Not sharded and without a completion marker: a rerun redoes the (cheap) checks and takes
every answer it already has from the response cache under ``<output>/_cache/teacher/``,
so it sends no request twice. With no ``teacher_url`` the step records that it was
skipped and why (the local pipeline's default) and succeeds.
"""

from __future__ import annotations

import dataclasses
import os

from codemill import io, stage
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.synth import distill, oss, output
from codemill.synth.filters import Contamination
from codemill.synth.service import Remote
from codemill.synth.teacher import Teacher

SKIP_REASON = (
    "no teacher: --teacher-url is empty (the local pipeline has none; the tasks stage feeds SFT and RL "
    "there). Give an OpenAI-compatible endpoint to synthesise data."
)


def _skipped(config, ctx) -> dict:
    stats = {
        "mode": config.mode,
        "skipped": True,
        "reason": SKIP_REASON,
        "requested": 0,
        "answered": 0,
        "kept": 0,
        "quarantined": 0,
        "by_reason": {},
        "acceptance_rate": 0.0,
        "invariant_ok": True,
    }
    stage.write_stats(ctx.output, stats)
    output.report(ctx.output, stats, [], 0)
    print(f"[synth] skipped: {SKIP_REASON}", flush=True)
    return stats


def _api_key(config) -> str:
    if not config.teacher_api_key_env:
        return ""
    key = os.environ.get(config.teacher_api_key_env, "")
    if not key:
        raise stage.InputError(
            f"synth: --teacher-api-key-env {config.teacher_api_key_env}: that variable is not set or empty"
        )
    return key


def synth_step(config, ctx) -> dict:
    if not config.teacher_url:
        return _skipped(config, ctx)
    teacher = Teacher(
        config.teacher_url,
        cache=io.join(ctx.output, "_cache", "teacher"),
        api_key=_api_key(config),
        concurrency=config.concurrency,
        timeout_s=config.request_timeout_s,
        max_retries=config.max_retries,
        backoff_s=config.backoff_s,
        retry_failed=config.retry_failed,
    )
    contamination = Contamination(
        config.decontam_paths, config.decontam_fields, config.decontam_ngram, config.decontam_min_tokens
    )
    limits = dataclasses.replace(Limits(), timeout=config.exec_timeout_s, memory_mb=config.exec_memory_mb)
    box = (
        Remote(config.sandbox_url, config.sandbox_api_key_env)
        if config.sandbox_url
        else Sandbox(limits, require_isolation=os.environ.get("_KFP_RUNTIME") == "true")
    )
    with box as sandbox:
        if config.mode == "oss-instruct":
            outcomes, extra = oss.run(config, ctx.input("input"), teacher, sandbox, contamination)
        else:
            outcomes, extra = distill.run(config, ctx.inputs, teacher, sandbox, contamination)
        isolation = sandbox.isolation
    stats = {
        "mode": config.mode,
        "skipped": False,
        "teacher_url": config.teacher_url,
        "teacher_model": config.teacher_model,
        **output.base_stats(outcomes, teacher.usage, extra.pop("requested")),
        **extra,
        "decontaminated_against": {"sets": config.decontam_paths, "benchmark_tasks": contamination.benchmarks},
        "sandbox": isolation,
    }
    if extra.get("mutual"):
        stats["agreement_histogram"] = extra["mutual"]["agreement_histogram"]
    print(
        f"[synth] kept {stats['kept']} of {stats['answered']} answers ({stats['by_reason']}); "
        f"{teacher.usage.http_requests} HTTP requests, {teacher.usage.cache_hits} from the cache",
        flush=True,
    )
    return output.finish(ctx.output, stats, outcomes, config.teacher_model, config.report_examples, ctx.tracker)
