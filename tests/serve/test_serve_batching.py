"""The batching policy on its own: window, max_batch in sequences, admission between steps, shutdown.

The backend here plays a decode loop of a fixed number of steps: it records the batches
and admissions it sees and finishes every row at the end. The real decode loop is
covered over HTTP in test_serve_http.py.
"""

import asyncio
import threading
import time

from codemill.serve.batching import Batcher, Finished, GenerationFailed, Job
from codemill.serve.metrics import ServerMetrics
from codemill.serve.protocol import CompletionRequest


class ScriptedBackend:
    tokenizer, context_length = None, 512

    def __init__(self, gate: threading.Event | None = None, steps: int = 1, step_s: float = 0.0):
        self.batches: list[list[int]] = []  # the n of each job a decode loop started with
        self.admitted: list[list[int]] = []
        self.gate = gate
        self.steps, self.step_s = steps, step_s

    def load(self):
        pass

    def generate(self, jobs, hooks):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append([job.n for job in jobs])
        running = list(jobs)
        for _ in range(self.steps):
            rows = sum(job.n for job in running)
            hooks.on_step(rows)
            time.sleep(self.step_s)
            new = hooks.admit(rows)
            if new:
                self.admitted.append([job.n for job in new])
                running += new
        for job in running:
            for i in range(job.n):
                job.emit(Finished(i, "length", 1))
            hooks.retire(job)


def _batcher(backend, **kw) -> Batcher:
    b = Batcher(backend, ServerMetrics("t"), **kw)
    b.load()
    return b


async def _submit_and_drain(batcher: Batcher, ns: list[int], pause_after: int | None = None) -> list[int]:
    loop = asyncio.get_running_loop()
    jobs = [Job([1, 2, 3], CompletionRequest(prompt="x", n=n), loop) for n in ns]
    for k, job in enumerate(jobs):
        if k == pause_after:
            await asyncio.sleep(0.2)  # the first jobs' decode loop is running now
        batcher.submit(job)

    async def drain(job):
        return len([e async for e in job.stream()])

    return await asyncio.wait_for(asyncio.gather(*(drain(j) for j in jobs)), 10)


def test_waiting_requests_start_together_up_to_max_batch_sequences():
    gate = threading.Event()
    backend = ScriptedBackend(gate)
    batcher = _batcher(backend, max_batch=8, wait_s=0.05)
    gate.set()
    assert asyncio.run(_submit_and_drain(batcher, [1, 2, 3, 1, 4, 1])) == [1, 2, 3, 1, 4, 1]
    batcher.close()
    assert backend.batches[0] == [1, 2, 3, 1]  # 7 sequences; the job with n=4 does not fit
    assert all(sum(b) + sum(sum(a) for a in backend.admitted) <= 8 * len(backend.batches) for b in backend.batches)
    assert batcher.metrics.running._value.get() == 0 and batcher.metrics.waiting._value.get() == 0


def test_requests_arriving_during_decoding_join_between_steps():
    gate = threading.Event()
    backend = ScriptedBackend(gate, steps=50, step_s=0.01)  # a 0.5 s decode loop
    batcher = _batcher(backend, max_batch=4, wait_s=0.0)

    async def scenario():
        task = asyncio.ensure_future(_submit_and_drain(batcher, [1, 1, 2, 1], pause_after=1))
        await asyncio.sleep(0.1)
        gate.set()
        return await task

    assert asyncio.run(scenario()) == [1, 1, 2, 1]
    batcher.close()
    assert backend.batches[0] == [1]
    assert sum(n for a in backend.admitted for n in a) >= 3  # the rest joined the running loop
    assert all(n <= 3 for a in backend.admitted for n in a)


def test_no_batching_serves_one_request_at_a_time():
    backend = ScriptedBackend(steps=3)
    batcher = _batcher(backend, max_batch=8, wait_s=0.05, batching=False)
    asyncio.run(_submit_and_drain(batcher, [1, 1, 1, 2]))
    batcher.close()
    assert backend.batches == [[1], [1], [1], [2]] and backend.admitted == []


def test_close_fails_jobs_still_waiting():
    gate = threading.Event()
    backend = ScriptedBackend(gate)
    batcher = _batcher(backend, max_batch=1, wait_s=0.0)

    async def scenario():
        loop = asyncio.get_running_loop()
        jobs = [Job([1], CompletionRequest(prompt="x"), loop) for _ in range(3)]
        for job in jobs:
            batcher.submit(job)
        await asyncio.sleep(0.1)  # the first job is inside the backend, held by the gate
        closer = threading.Thread(target=batcher.close)
        closer.start()
        await asyncio.sleep(0.1)  # close() has begun: nothing new may start
        gate.set()
        await asyncio.to_thread(closer.join)
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(len([e async for e in job.stream()]))
            except GenerationFailed as e:
                outcomes.append((e.status, str(e)))
        return outcomes

    shut = (503, "the server is shutting down")
    assert asyncio.run(scenario()) == [1, shut, shut]
    assert backend.batches == [[1]]
