"""``--mode oss-instruct``: problems written from corpus seeds, kept only when verified.

Order of the checks (the first that fails names the quarantine reason):
``teacher_error`` (no answer) -> ``unparseable`` / ``no_tests`` (the answer's shape) ->
``failed_tests`` / ``timeout`` (the solution followed by its tests, in the sandbox, must
run to the end with the harness's marker) -> ``contaminated`` (problem + solution against
the benchmarks) -> ``duplicate`` (against the samples kept before it, in seed order).
"""

from __future__ import annotations

from codemill.evaluate.sandbox import run_parallel
from codemill.synth import answers, prompts, seeds
from codemill.synth.filters import Contamination, Dedup
from codemill.synth.output import Outcome
from codemill.synth.service import Remote
from codemill.synth.teacher import Request, Teacher


def _outcome(seed: seeds.Seed) -> Outcome:
    return Outcome(
        task_id=f"oss-instruct/{seed.index:06d}",
        source="oss-instruct",
        kind="oss-instruct",
        sample=0,
        prompt=prompts.oss_instruct(seed.language, seed.snippet),
        seed=seed.snippet,
        language=seed.language,
        origin=seed.origin,
    )


def run(config, input_url: str, teacher: Teacher, sandbox, contamination: Contamination) -> tuple[list[Outcome], dict]:
    drawn, seed_stats = seeds.draw(
        input_url,
        config.max_samples,
        config.language_quotas(),
        config.seed,
        config.min_seed_lines,
        config.max_seed_lines,
    )
    outcomes = [_outcome(s) for s in drawn]
    requests = [
        Request(
            prompts.body(
                config.teacher_model,
                o.prompt,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=config.seed,
            )
        )
        for o in outcomes
    ]
    written: dict[int, answers.Written] = {}
    for number, (outcome, reply) in enumerate(zip(outcomes, teacher.ask(requests, "oss-instruct"))):
        outcome.answer, outcome.truncated = reply.text, reply.finish_reason == "length"
        if reply.error:
            outcome.drop("teacher_error", reply.error)
            continue
        try:
            written[number] = answers.parse_written(reply.text)
            outcome.tests = written[number].tests
        except answers.Unusable as e:
            outcome.drop(e.reason, str(e))

    def execute(number: int):
        return sandbox.run(written[number].solution + "\n\n" + written[number].tests, mode="function")

    order = sorted(written)
    if isinstance(sandbox, Remote):  # --sandbox-url: the same programs, judged by the service
        runs = sandbox.programs([written[n].solution + "\n\n" + written[n].tests for n in order])
    else:
        runs = run_parallel(execute, order, config.workers, "oss-instruct: tests")
    for number, run_ in zip(order, runs):
        if run_.timed_out:
            outcomes[number].drop("timeout", f"the solution and its tests ran past {config.exec_timeout_s:g}s")
        elif not run_.passed:
            outcomes[number].drop("failed_tests", run_.result)
    dedup = Dedup(config.dedup_threshold, config.seed)
    for number in order:
        outcome, parts = outcomes[number], written[number]
        if not outcome.kept:
            continue
        text = parts.problem + "\n" + parts.solution
        why = contamination.find(text)
        if why:
            outcome.drop("contaminated", why)
            continue
        why = dedup.check(outcome.task_id, text)
        if why:
            outcome.drop("duplicate", why)
    return outcomes, {"seeds": seed_stats, "requested": len(requests)}
