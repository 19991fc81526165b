"""The Hugging Face transformers backend: a continuously batched decode loop with a KV cache.

Why not ``model.generate``: a batch here mixes requests with different ``max_tokens``,
stop sequences, temperatures, seeds and ``n``, streams every token as it is made, and
takes in new requests while it runs. One forward pass per step serves the whole batch:

1. prefill: prompts are left-padded into one tensor; position ids restart after the
   padding (``cumsum`` of the attention mask) so a padded prompt sees the positions it
   would alone; only the last position's logits are computed (``logits_to_keep=1``);
2. each step samples one token per row (:mod:`codemill.serve.sampling`), feeds it to
   the row's :class:`~codemill.serve.textstream.ChoiceText` and sends the text delta;
3. rows that finished (end-of-sequence, stop sequence, ``max_tokens``, client gone)
   leave the batch and the KV cache (``Cache.batch_select_indices``);
4. between steps the batcher may hand over requests that arrived meanwhile
   (continuous batching): they are prefilled on their own and joined to the running
   batch (:mod:`codemill.serve.kvcache`), so a new request waits one step, not for the
   whole batch to finish.

A request with ``echo`` and ``max_tokens`` 0 (scoring a prompt) never joins the batch: one
forward pass over its prompt gives the logprobs asked for (none is run when none is asked),
and its choices finish with ``length`` and no token.

Greedy rows produce what ``model.generate(do_sample=False)`` produces for the same
prompt alone (a test checks this under concurrency).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch

from codemill.serve import kvcache
from codemill.serve.batching import Delta, Finished, Job
from codemill.serve.engine import BatchHooks
from codemill.serve.textstream import ChoiceText
from codemill.stage import InputError

log = logging.getLogger("codemill.serve")


@dataclass
class _Row:
    job: Job
    index: int
    text: ChoiceText
    generator: torch.Generator
    pending: list = field(default_factory=list)  # logprobs of tokens whose text has not gone out yet


@dataclass
class _Batch:
    """Rows decoding together: KV cache, attention mask, next positions, latest logits."""

    rows: list[_Row]
    cache: object
    mask: torch.Tensor
    next_pos: torch.Tensor
    logits: torch.Tensor
    temperature: torch.Tensor
    top_p: torch.Tensor
    tokens: list[int] = field(default_factory=list)  # sampled, not yet fed to the model

    def select(self, keep: list[int]) -> None:
        idx = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.rows = [self.rows[j] for j in keep]
        self.mask, self.next_pos = self.mask[idx], self.next_pos[idx]
        self.temperature, self.top_p = self.temperature[idx], self.top_p[idx]
        if kvcache.joinable(self.cache):
            self.cache, self.mask = kvcache.drop_leading_padding(self.cache, self.mask)

    def join(self, other: _Batch) -> _Batch:
        """This batch's rows then ``other``'s, both waiting to sample from their logits."""
        cache, mask = kvcache.join(self.cache, self.mask, other.cache, other.mask)
        return _Batch(
            self.rows + other.rows,
            cache,
            mask,
            torch.cat([self.next_pos, other.next_pos]),
            torch.cat([self.logits, other.logits]),
            torch.cat([self.temperature, other.temperature]),
            torch.cat([self.top_p, other.top_p]),
        )

    def step(self, model) -> None:
        """Feed the sampled tokens; afterwards ``logits`` hold the next distribution."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = model(
            input_ids=torch.tensor(self.tokens, device=self.mask.device)[:, None],
            attention_mask=self.mask,
            position_ids=self.next_pos[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache, self.logits, self.next_pos = out.past_key_values, out.logits[:, -1, :], self.next_pos + 1


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str):
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def model_context_length(config) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class HFBackend:
    def __init__(
        self, model_dir: str, device: str = "auto", dtype: str = "auto", context_length: int = 0, torch_threads: int = 0
    ):
        self.model_dir = model_dir
        self.device_name, self.dtype_name = device, dtype
        self.requested_context = context_length
        self.torch_threads = torch_threads
        self.tokenizer = None
        self.model = None
        self.context_length = 0
        self.joins_caches: bool | None = None  # learned at the first prefill (the warm-up)

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        self.device = pick_device(self.device_name)
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = (
            AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=pick_dtype(self.dtype_name, self.device))
            .to(self.device)
            .eval()
        )
        limit = model_context_length(self.model.config)
        if self.requested_context and limit and self.requested_context > limit:
            raise InputError(f"context_length {self.requested_context} exceeds the model's {limit} positions")
        self.context_length = self.requested_context or limit or 2048
        self.pad_id = next(i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None)
        self.eos_ids = self._eos_ids()
        log.info(
            "loaded %s on %s in %.1fs (context %d)",
            self.model_dir,
            self.device,
            time.perf_counter() - started,
            self.context_length,
        )

    def _eos_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
        return frozenset(i for i in ids if i is not None)

    # ------------------------------------------------------------------------ decode loop

    def _rows(self, jobs: list[Job]) -> list[_Row]:
        from codemill.serve.sampling import row_generator

        return [
            _Row(
                job,
                i,
                ChoiceText(self.tokenizer, job.request.max_tokens, job.request.stop, self.eos_ids | job.stop_ids),
                row_generator(job.request.seed, i, self.device),
            )
            for job in jobs
            for i in range(job.n)
        ]

    def _prefill_all(self, jobs: list[Job]) -> _Batch:
        """Prefill ``jobs``; an ``echo`` job needs logits at every prompt position, so it gets a pass of its
        own (joined afterwards) rather than making the whole batch keep rows x width x vocab logits."""
        echo = [job for job in jobs if job.request.echo]
        if not echo or not self.joins_caches:
            return self._prefill(jobs, all_logits=bool(echo))
        rest = [job for job in jobs if not job.request.echo]
        batch = self._prefill(rest) if rest else None
        for job in echo:
            fresh = self._prefill([job], all_logits=True)
            batch = fresh if batch is None else batch.join(fresh)
        return batch

    def _prefill(self, jobs: list[Job], all_logits: bool = False) -> _Batch:
        rows = self._rows(jobs)
        prompts = [r.job.prompt_ids for r in rows]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=0 if all_logits else 1,
        )
        if self.joins_caches is None:
            self.joins_caches = kvcache.joinable(out.past_key_values)
        if all_logits:
            self._prompt_logprobs(rows, out.logits, width)
        return _Batch(
            rows,
            out.past_key_values,
            mask,
            positions[:, -1] + 1,
            out.logits[:, -1, :],
            torch.tensor([r.job.request.temperature for r in rows], device=self.device),
            torch.tensor([r.job.request.top_p for r in rows], device=self.device),
        )

    @staticmethod
    def _prompt_logprobs(rows: list[_Row], logits: torch.Tensor, width: int) -> None:
        from codemill.serve import logprobs

        for r, row in enumerate(rows):
            job = row.job
            if job.request.echo and job.prompt_logprobs is None:  # set before the job's first event goes out
                k = job.request.logprobs or 0
                job.prompt_logprobs = logprobs.prompt(logits[r, width - len(job.prompt_ids) :], job.prompt_ids, k)

    def _answer_prompt_only(self, jobs: list[Job], hooks: BatchHooks) -> list[Job]:
        """Finish the ``max_tokens`` 0 jobs (``echo``: the prompt is the whole answer); returns the others."""
        from codemill.serve import logprobs

        rest = []
        for job in jobs:
            if job.request.max_tokens:
                rest.append(job)
                continue
            if not job.cancelled:
                if job.request.logprobs is not None:  # one unpadded row: the positions are 0..len-1
                    logits = self.model(input_ids=torch.tensor([job.prompt_ids], device=self.device)).logits[0]
                    job.prompt_logprobs = logprobs.prompt(logits, job.prompt_ids, job.request.logprobs)
                job.emit_all([Finished(i, "length", 0) for i in range(job.n)])
            job.open_rows = 0
            hooks.retire(job)
        return rest

    def generate(self, jobs: list[Job], hooks: BatchHooks) -> None:
        """Decode until no row is left, taking in the jobs ``hooks.admit`` hands over between steps.

        ``hooks`` is the batcher: ``admit(rows_running) -> [Job]``, ``retire(job)`` when all
        of a job's rows are done, ``on_step(rows)`` once per decode step.
        """
        from codemill.serve import logprobs
        from codemill.serve.sampling import sample_next

        with torch.inference_mode():
            batch, pending = None, jobs
            while True:
                pending = self._answer_prompt_only(pending, hooks)
                if pending:
                    fresh = self._prefill_all(pending)
                    batch = fresh if batch is None else batch.join(fresh)
                if batch is None:
                    return
                tokens = sample_next(
                    batch.logits, batch.temperature, batch.top_p, [r.generator for r in batch.rows]
                ).tolist()
                entries = logprobs.sampled(batch.logits, tokens, [r.job.request.logprobs for r in batch.rows])
                batch = self._advance(batch, tokens, entries, hooks)
                joinable = batch is None or kvcache.joinable(batch.cache)
                pending = hooks.admit(len(batch.rows) if batch else 0) if joinable else []
                if batch is not None:
                    hooks.on_step(len(batch.rows))
                    batch.step(self.model)

    def _advance(self, batch: _Batch, tokens: list[int], entries: list, hooks: BatchHooks) -> _Batch | None:
        """Give each row its token; returns the batch of rows that go on (None when none).

        Events go out once per job per step (one wake-up of the event loop, not one per
        row); a job that does not stream gets its text in one piece when a choice ends.
        """
        now = time.perf_counter()
        keep, outbox = [], {}
        for j, (row, token, entry) in enumerate(zip(batch.rows, tokens, entries)):
            job = row.job
            if job.cancelled:
                self._close_row(row, hooks)
                continue
            if job.first_token_at is None:
                job.first_token_at = now
            if entry is not None:
                row.pending.append(entry)
            delta = row.text.push(token)
            events = outbox.setdefault(job, [])
            if delta and job.request.stream:
                events.append(Delta(row.index, delta, row.pending))
                row.pending = []
            if row.text.finish_reason is None:
                keep.append(j)
                continue
            text = row.text.text if not job.request.stream else ""
            if text or row.pending:
                events.append(Delta(row.index, text, row.pending))
            events.append(Finished(row.index, row.text.finish_reason, len(row.text.tokens)))
            self._close_row(row, hooks)
        for job, events in outbox.items():
            if events:
                job.emit_all(events)
        if not keep:
            return None
        batch.tokens = [tokens[j] for j in keep]
        if len(keep) < len(batch.rows):
            batch.select(keep)
        return batch

    @staticmethod
    def _close_row(row: _Row, hooks: BatchHooks) -> None:
        row.job.open_rows -= 1
        if row.job.open_rows == 0:
            hooks.retire(row.job)
