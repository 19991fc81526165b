"""Answers: submit a request's jobs, then collect their events into one body or stream them as SSE.

Both APIs share this; ``fmt`` (``protocol.CompletionFormat`` or ``chat.ChatFormat``) shapes
the bodies and chunks. ``Extras`` adds what completions' ``echo`` and ``logprobs`` ask for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codemill.serve import protocol
from codemill.serve.batching import Delta, GenerationFailed, Job, stream_all
from codemill.serve.logprobs import LogprobsText, merge
from codemill.serve.protocol import ApiError

if TYPE_CHECKING:
    from codemill.serve.app import ServerState


def submit(state: ServerState, jobs: list[Job]) -> None:
    """Hand every job to the engine, or none (a refusal of one cancels those already queued)."""
    try:
        for job in jobs:
            state.engine.submit(job)
            state.jobs.add(job)
    except ApiError:
        for job in jobs:
            job.cancelled = True
            state.jobs.discard(job)
        raise


def _done(state: ServerState, jobs: list[Job], cancel: bool) -> None:
    for job in jobs:
        state.jobs.discard(job)
        job.cancelled = job.cancelled or cancel  # client gone or generation failed: free the rows


class Extras:
    """What ``echo`` and ``logprobs`` add to each choice of a completions request (nothing for chat)."""

    def __init__(self, state: ServerState, jobs: list[Job]):
        req = jobs[0].request
        self.echo = bool(getattr(req, "echo", False))
        self.logprobs = getattr(req, "logprobs", None) is not None
        self.active = self.echo or self.logprobs
        self.tokenizer = state.builder.tokenizer
        self.job_of = {i: job for job in jobs for i in range(job.first_index, job.first_index + job.n)}
        self.writers = {i: LogprobsText(self.tokenizer) for i in self.job_of} if self.logprobs else {}

    def opening(self, index: int) -> tuple[str, dict | None]:
        """The echoed prompt (text, logprobs) of choice ``index``; call it once its first event arrived."""
        if not self.echo:
            return "", None
        job = self.job_of[index]
        prompt = job.request.prompts[job.first_index // job.n]
        text = prompt if isinstance(prompt, str) else self.tokenizer.decode(prompt, skip_special_tokens=False)
        if not self.logprobs:
            return text, None
        return text, self.writers[index].render(job.prompt_logprobs or [], first_token=job.prompt_ids[0])

    def more(self, index: int, entries: list) -> dict | None:
        return self.writers[index].render(entries) if self.logprobs else None


async def collect(state: ServerState, jobs: list[Job], cid: str, fmt) -> dict:
    choices = sum(job.n for job in jobs)
    texts, reasons, tokens = [""] * choices, [""] * choices, 0
    entries = [[] for _ in range(choices)]
    try:
        async for event in stream_all(jobs):
            if isinstance(event, Delta):
                texts[event.index] += event.text
                entries[event.index] += event.logprobs
            else:
                reasons[event.index], tokens = event.reason, tokens + event.tokens
    except GenerationFailed as e:
        raise ApiError(e.status, str(e), code=e.code, type_="server_error") from e
    finally:
        _done(state, jobs, cancel=not all(reasons))
    state.record(jobs, reasons, tokens)
    prompt_tokens = sum(len(job.prompt_ids) for job in jobs)
    extras, logprobs = Extras(state, jobs), None
    if extras.active:
        openings = [extras.opening(i) for i in range(choices)]
        texts = [echoed + text for (echoed, _), text in zip(openings, texts)]
        if extras.logprobs:
            logprobs = [merge(lp, extras.more(i, entries[i])) for i, (_, lp) in enumerate(openings)]
    return fmt.body(cid, state.config.served_model_name, texts, reasons, prompt_tokens, tokens, logprobs)


async def stream_events(state: ServerState, jobs: list[Job], cid: str, fmt):
    """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``."""
    name, reasons, tokens, finished = state.config.served_model_name, [], 0, False
    extras, opened = Extras(state, jobs), set()
    try:
        for chunk in fmt.opening_chunks(cid, name, sum(job.n for job in jobs)):
            yield protocol.sse(chunk)
        async for event in stream_all(jobs):
            if extras.echo and event.index not in opened:  # the prompt's logprobs exist once it was prefilled
                opened.add(event.index)
                text, logprobs = extras.opening(event.index)
                yield protocol.sse(fmt.chunk(cid, name, event.index, text, None, logprobs))
            if isinstance(event, Delta):
                logprobs = extras.more(event.index, event.logprobs)
                yield protocol.sse(fmt.chunk(cid, name, event.index, event.text, None, logprobs))
            else:
                reasons.append(event.reason)
                tokens += event.tokens
                yield protocol.sse(fmt.chunk(cid, name, event.index, "", event.reason))
        state.record(jobs, reasons, tokens)
        if jobs[0].request.include_usage:
            prompt_tokens = sum(len(job.prompt_ids) for job in jobs)
            yield protocol.sse(fmt.usage_chunk(cid, name, prompt_tokens, tokens))
        finished = True
    except GenerationFailed as e:  # headers are sent already: report in-band, as OpenAI does
        state.metrics.error(e.code)
        yield protocol.sse(ApiError(e.status, str(e), code=e.code, type_="server_error").body())
    finally:
        _done(state, jobs, cancel=not finished)
    yield protocol.sse("[DONE]")
