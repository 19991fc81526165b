"""The decode loop itself: requests joining and leaving mid-loop still get model.generate's answer."""

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.serve.batching import Delta, Job
from codemill.serve.hf_backend import HFBackend
from codemill.serve.prompting import PromptBuilder
from codemill.serve.protocol import CompletionRequest


class ScheduledHooks:
    """Hands the decode loop prepared jobs at chosen steps; records what it saw."""

    def __init__(self, schedule: dict[int, list[Job]]):
        self.schedule, self.step, self.rows, self.retired = schedule, 0, [], []

    def admit(self, rows_running):
        self.step += 1
        return self.schedule.pop(self.step, [])

    def retire(self, job):
        self.retired.append(job)

    def on_step(self, rows):
        self.rows.append(rows)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    b = HFBackend(tiny_model_dir)
    b.load()
    return b


@pytest.fixture(scope="module")
def greedy_reference(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()

    def run(ids: list[int], max_tokens: int) -> str:
        t = torch.tensor([ids])
        out = model.generate(t, attention_mask=torch.ones_like(t), max_new_tokens=max_tokens, do_sample=False)
        return tok.decode(out[0, t.shape[1] :], skip_special_tokens=True)

    return run


def _job(builder, prompt, loop, **kw) -> Job:
    return Job(builder.build(prompt, kw.pop("suffix", None)), CompletionRequest(prompt=prompt, **kw), loop)


def test_jobs_joining_and_leaving_mid_loop_match_generate(backend, greedy_reference):
    builder = PromptBuilder(backend.tokenizer)
    specs = [
        ("def add(a, b):", 12, None),
        ("x", 5, None),
        ("import os\nimport sys\n\n\nclass Config(object):\n", 9, 2),
        ("for i in range(3):", 14, 4),
        ("def area(r):\n    ", 6, 4),
        ("# a much longer comment " * 6, 8, 7),
    ]

    async def scenario():
        loop = asyncio.get_running_loop()
        first, later = [], {}
        for prompt, max_tokens, step in specs:
            suffix = "\n    return result\n" if prompt.startswith("def area") else None
            job = _job(builder, prompt, loop, max_tokens=max_tokens, temperature=0.0, suffix=suffix)
            (first if step is None else later.setdefault(step, [])).append(job)
        jobs = first + [j for _, js in sorted(later.items()) for j in js]
        hooks = ScheduledHooks(later)
        await asyncio.to_thread(backend.generate, first, hooks)
        return jobs, hooks

    jobs, hooks = asyncio.run(scenario())
    assert len(hooks.retired) == len(specs)
    assert max(hooks.rows) >= 3 and hooks.rows[-1] == 1  # rows joined, then left one by one
    for job in jobs:
        text = "".join(e.text for e in _drain(job) if isinstance(e, Delta))
        assert text == greedy_reference(job.prompt_ids, job.request.max_tokens), job.request.prompt


def _drain(job: Job) -> list:
    events = []
    while not job.events.empty():
        events.append(job.events.get_nowait())
    return events


def test_seeded_sampling_is_the_same_alone_and_joined_mid_loop(backend):
    builder = PromptBuilder(backend.tokenizer)

    async def run(join_at: int | None) -> list[str]:
        loop = asyncio.get_running_loop()
        other = _job(builder, "while True:\n", loop, max_tokens=20, temperature=1.0, seed=1)
        probe = _job(builder, "def tree(x):", loop, max_tokens=10, temperature=0.9, seed=77, n=2)
        first, later = ([probe], {}) if join_at is None else ([other], {join_at: [probe]})
        await asyncio.to_thread(backend.generate, first, ScheduledHooks(later))
        parts = ["", ""]
        for e in _drain(probe):
            if isinstance(e, Delta):
                parts[e.index] += e.text
        return parts

    alone = asyncio.run(run(None))
    assert alone[0] != alone[1]
    assert asyncio.run(run(3)) == alone
