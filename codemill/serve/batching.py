"""Dynamic, continuous batching: concurrent requests share the model's forward passes.

Requests (``Job``) arrive on the event loop and go into a thread-safe queue. One worker
thread owns the model. When idle it takes the first waiting job, keeps collecting jobs
that are already waiting or arrive within ``wait_s`` (a few milliseconds) up to
``max_batch`` sequences (a job with ``n`` choices is ``n`` sequences) and starts a
decode loop. While the loop runs, ``admit`` hands it the jobs that arrived meanwhile
between two steps, as long as they fit in ``max_batch``; finished sequences leave at
every step. So under steady load the batch stays full and a new request waits one
decode step, not for a whole batch to finish.

The worker thread keeps the event loop free: the backend posts ``Delta``/``Finished``
events to each job's asyncio queue with ``call_soon_threadsafe``, and the HTTP handler
streams them out. A cancelled job (client gone) is dropped before it starts and its
rows leave at the next step.

``batching=False`` runs one job at a time: the baseline the load benchmark compares to.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from codemill.serve.protocol import ApiError, GenerationParams

log = logging.getLogger("codemill.serve")


@dataclass
class Delta:
    index: int
    text: str
    logprobs: list = field(default_factory=list)  # TokenLogprob of the tokens behind `text`, when asked for


@dataclass
class Finished:
    index: int
    reason: str
    tokens: int


@dataclass
class Failed:
    message: str
    status: int = 500
    code: str = "internal_error"


class GenerationFailed(RuntimeError):
    """A job's generation ended with ``Failed``; carries the HTTP status and error code."""

    def __init__(self, event: Failed):
        super().__init__(event.message)
        self.status, self.code = event.status, event.code


class Job:
    """One prompt of a request on its way through an engine: prompt ids, sampling, and where its events go.

    A request with several prompts is several jobs sharing one event queue; ``first_index``
    numbers their choices prompt-major (prompt 0's ``n`` choices, then prompt 1's), as
    OpenAI does. ``stop_ids`` end a choice like the end-of-sequence token (chat: the
    end-of-turn token).
    """

    def __init__(
        self,
        prompt_ids: list[int],
        request: GenerationParams,
        loop: asyncio.AbstractEventLoop,
        events: asyncio.Queue | None = None,
        first_index: int = 0,
        stop_ids: frozenset[int] = frozenset(),
    ):
        self.prompt_ids = prompt_ids
        self.request = request
        self.loop = loop
        self.events: asyncio.Queue = events if events is not None else asyncio.Queue()
        self.first_index = first_index
        self.stop_ids = stop_ids
        self.cancelled = False
        self.open_rows = request.n  # counted down by the model thread
        self.received = time.perf_counter()
        self.first_token_at: float | None = None  # set by the model thread
        self.prompt_logprobs: list | None = None  # set by the model thread before its first event (echo)

    @property
    def n(self) -> int:
        return self.request.n

    def emit(self, event) -> None:
        """Called from the model thread: deliver one event to the request's handler."""
        self.emit_all([event])

    def emit_all(self, events: list) -> None:
        """Deliver several events with one wake-up of the event loop."""
        try:
            self.loop.call_soon_threadsafe(self._put_all, events)
        except RuntimeError:  # the event loop is gone (server stopped): nobody is listening
            self.cancelled = True

    def _put_all(self, events: list) -> None:
        for event in events:
            if self.first_index and not isinstance(event, Failed):
                event.index += self.first_index
            self.events.put_nowait(event)

    async def stream(self) -> AsyncIterator[Delta | Finished]:
        """The job's events until every choice finished; raises GenerationFailed on ``Failed``."""
        async for event in stream_all([self]):
            yield event


async def stream_all(jobs: list[Job]) -> AsyncIterator[Delta | Finished]:
    """The events of jobs that share one queue, until all their choices finished."""
    open_choices = sum(job.n for job in jobs)
    events = jobs[0].events
    while open_choices:
        event = await events.get()
        if isinstance(event, Failed):
            raise GenerationFailed(event)
        if isinstance(event, Finished):
            open_choices -= 1
        yield event


_STOP = object()


class Batcher:
    """The ``hf`` backend's :class:`~codemill.serve.engine.Engine`: a queue, a batching policy and the model thread.

    It is also the decode loop's :class:`~codemill.serve.engine.BatchHooks` (``admit``,
    ``retire``, ``on_step``).
    """

    def __init__(
        self,
        backend,
        metrics,
        max_batch: int = 32,
        wait_s: float = 0.005,
        batching: bool = True,
        max_waiting: int = 1024,
        admit_ratio: float = 0.3,
        admit_max_wait_steps: int = 8,
    ):
        self.backend = backend
        self.metrics = metrics
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batching = batching
        self.max_waiting = max_waiting
        self.admit_ratio = admit_ratio
        self.admit_max_wait_steps = admit_max_wait_steps
        self._steps_since_admit = 0
        self._queue: queue.Queue = queue.Queue()
        self._carry: Job | None = None
        self._stopping = False
        self._inflight: set[Job] = set()
        self._thread: threading.Thread | None = None

    # Engine interface used by the server ---------------------------------------------

    @property
    def tokenizer(self):
        return self.backend.tokenizer

    @property
    def context_length(self) -> int:
        return self.backend.context_length

    def load(self) -> None:
        self.backend.load()
        self._thread = threading.Thread(target=self._run, name="codemill-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        if self._stopping:
            raise ApiError(503, "the server is shutting down", code="shutting_down", type_="server_error")
        if self._queue.qsize() >= self.max_waiting:
            raise ApiError(
                503,
                f"too many requests waiting ({self.max_waiting}); retry later",
                code="overloaded",
                type_="server_error",
            )
        self.metrics.waiting.inc()
        self._queue.put(job)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the batch in progress, fail whatever still waits, stop the thread.

        The server calls this after uvicorn drained the requests in flight, so normally
        nothing waits any more.
        """
        self._stopping = True
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    # Model thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = self._start(batch)
            if not live:
                continue
            try:
                self.backend.generate(live, self)
            except Exception as e:  # a model failure fails the requests in flight, not the server
                log.exception("decode loop with %d requests failed", len(self._inflight))
                for job in list(self._inflight):
                    job.emit(Failed(f"generation failed: {type(e).__name__}: {e}"))
                    self.retire(job)

    def _start(self, jobs: list[Job]) -> list[Job]:
        self.metrics.waiting.dec(len(jobs))
        live = [job for job in jobs if not job.cancelled]
        self.metrics.running.inc(len(live))
        self._inflight.update(live)
        return live

    # Hooks the backend's decode loop calls -----------------------------------------------

    def admit(self, rows_running: int) -> list[Job]:
        """Jobs that arrived while decoding and fit next to ``rows_running`` sequences.

        Joining costs a prefill pass and a KV-cache copy, so newcomers are let in together:
        once at least ``admit_ratio`` x running sequences wait, or ``admit_max_wait_steps``
        decode steps passed since the last join, or nothing else is running (the policy of
        text-generation-inference's waiting_served_ratio / max_waiting_tokens).
        """
        if not self.batching or self._stopping:
            return []
        waiting = self._queue.qsize() + (self._carry is not None)
        if not waiting or (
            rows_running
            and waiting < self.admit_ratio * rows_running
            and self._steps_since_admit < self.admit_max_wait_steps
        ):
            return []
        self._steps_since_admit = 0
        jobs, rows = [], rows_running
        while rows < self.max_batch:
            item = self._carry
            self._carry = None
            if item is None:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if item is _STOP or rows + item.n > self.max_batch:
                self._carry = item
                break
            jobs.append(item)
            rows += item.n
        return self._start(jobs) if jobs else []

    def retire(self, job: Job) -> None:
        """All of ``job``'s sequences are done (or it was cancelled)."""
        if job in self._inflight:
            self._inflight.discard(job)
            self.metrics.running.dec()

    def on_step(self, rows: int) -> None:
        self._steps_since_admit += 1
        self.metrics.batch_size.observe(rows)

    def _next_batch(self) -> list[Job] | None:
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if first is _STOP or self._stopping:
            self._fail_waiting(first)
            return None
        batch, rows = [first], first.n
        deadline = time.perf_counter() + self.wait_s
        while self.batching and rows < self.max_batch:
            try:
                remaining = deadline - time.perf_counter()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP or rows + item.n > self.max_batch:
                self._carry = item  # starts the next batch (or stops the worker after this one)
                break
            batch.append(item)
            rows += item.n
        return batch

    def _fail_waiting(self, first) -> None:
        """After close(): jobs that never started get an error instead of a model batch."""
        item = first
        while True:
            if item is not _STOP:
                self.metrics.waiting.dec()
                item.emit(Failed("the server is shutting down", 503, "shutting_down"))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
