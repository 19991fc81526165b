"""Dynamic batching: concurrent requests share one model batch instead of queueing one by one.

Requests (``Job``) arrive on the event loop and go into a thread-safe queue. One worker
thread owns the model: it takes the first waiting job, then keeps collecting jobs that
are already waiting or arrive within ``wait_s`` (a few milliseconds), up to ``max_batch``
sequences (a job with ``n`` choices is ``n`` sequences), and hands the batch to the
backend's step loop. While a batch decodes, new jobs pile up and form the next batch
at once, so under load the window costs nothing and batches fill up.

The worker thread keeps the event loop free: the backend posts ``Delta``/``Finished``
events to each job's asyncio queue with ``call_soon_threadsafe``, and the HTTP handler
streams them out. A cancelled job (client gone) is dropped before its batch starts and
its rows are retired at the next decode step.

``batching=False`` takes one job per batch: the baseline the load benchmark compares to.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import AsyncIterator

from codemill.serve.protocol import ApiError, CompletionRequest

log = logging.getLogger("codemill.serve")


@dataclass
class Delta:
    index: int
    text: str


@dataclass
class Finished:
    index: int
    reason: str
    tokens: int


@dataclass
class Failed:
    message: str


class Job:
    """One request on its way through an engine: prompt ids, sampling, and where its events go."""

    def __init__(self, prompt_ids: list[int], request: CompletionRequest, loop: asyncio.AbstractEventLoop):
        self.prompt_ids = prompt_ids
        self.request = request
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.received = time.perf_counter()
        self.first_token_at: float | None = None  # set by the model thread

    @property
    def n(self) -> int:
        return self.request.n

    def emit(self, event) -> None:
        """Called from the model thread: deliver one event to the request's handler."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server stopped): nobody is listening
            self.cancelled = True

    async def stream(self) -> AsyncIterator[Delta | Finished]:
        """The job's events until every choice finished; raises RuntimeError on ``Failed``."""
        open_choices = self.n
        while open_choices:
            event = await self.events.get()
            if isinstance(event, Failed):
                raise RuntimeError(event.message)
            if isinstance(event, Finished):
                open_choices -= 1
            yield event


_STOP = object()


class Batcher:
    """The engine of the ``hf`` backend: a queue, a batching policy and the model thread."""

    def __init__(self, backend, metrics, max_batch: int = 32, wait_s: float = 0.005,
                 batching: bool = True, max_waiting: int = 1024):
        self.backend = backend
        self.metrics = metrics
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batching = batching
        self.max_waiting = max_waiting
        self._queue: queue.Queue = queue.Queue()
        self._carry: Job | None = None
        self._stopping = False
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
            raise ApiError(503, f"too many requests waiting ({self.max_waiting}); retry later",
                           code="overloaded", type_="server_error")
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
            self.metrics.waiting.dec(len(batch))
            live = [job for job in batch if not job.cancelled]
            if not live:
                continue
            self.metrics.running.inc(len(live))
            self.metrics.batch_size.observe(sum(job.n for job in live))
            try:
                self.backend.generate(live)
            except Exception as e:  # a model failure fails this batch, not the server
                log.exception("batch of %d requests failed", len(live))
                for job in live:
                    job.emit(Failed(f"generation failed: {type(e).__name__}: {e}"))
            finally:
                self.metrics.running.dec(len(live))

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
                item.emit(Failed("the server is shutting down"))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
