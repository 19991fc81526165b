"""The Hugging Face transformers backend: a batched decode loop with a KV cache.

Why not ``model.generate``: a batch here mixes requests with different ``max_tokens``,
stop sequences, temperatures, seeds and ``n``, and streams every token as it is made.
The loop below does one forward pass per step for the whole batch:

1. prefill: prompts are left-padded into one tensor; position ids restart after the
   padding (``cumsum`` of the attention mask) so a padded prompt sees the same positions
   it would alone; only the last position's logits are computed (``logits_to_keep=1``);
2. each step samples one token per row (:mod:`codemill.serve.sampling`), feeds it to
   the row's :class:`~codemill.serve.textstream.ChoiceText` and sends the text delta;
3. rows that finished (end-of-sequence, stop sequence, ``max_tokens``, client gone) are
   removed from the batch and from the KV cache (``Cache.batch_select_indices``), so
   short requests stop costing compute as soon as they are done.

Greedy rows produce exactly what ``model.generate(do_sample=False)`` produces for the
same prompt alone (a test checks this, batched).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from codemill.serve.batching import Delta, Finished, Job
from codemill.serve.textstream import ChoiceText
from codemill.stage import InputError

log = logging.getLogger("codemill.serve")


@dataclass
class _Row:
    job: Job
    index: int
    text: ChoiceText
    generator: object


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str):
    import torch

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
    def __init__(self, model_dir: str, device: str = "auto", dtype: str = "auto", context_length: int = 0,
                 torch_threads: int = 0):
        self.model_dir = model_dir
        self.device_name, self.dtype_name = device, dtype
        self.requested_context = context_length
        self.torch_threads = torch_threads
        self.tokenizer = None
        self.model = None
        self.context_length = 0

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        self.device = pick_device(self.device_name)
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_dir, dtype=pick_dtype(self.dtype_name, self.device)).to(self.device).eval()
        limit = model_context_length(self.model.config)
        if self.requested_context and limit and self.requested_context > limit:
            raise InputError(f"context_length {self.requested_context} exceeds the model's {limit} positions")
        self.context_length = self.requested_context or limit or 2048
        self.pad_id = next(i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None)
        self.eos_ids = self._eos_ids()
        log.info("loaded %s on %s in %.1fs (context %d)", self.model_dir, self.device,
                 time.perf_counter() - started, self.context_length)

    def _eos_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
        return frozenset(i for i in ids if i is not None)

    # ------------------------------------------------------------------------ decode loop

    def _rows(self, jobs: list[Job]) -> list[_Row]:
        from codemill.serve.sampling import row_generator

        return [_Row(job, i, ChoiceText(self.tokenizer, job.request.max_tokens, job.request.stop, self.eos_ids),
                     row_generator(job.request.seed, i, self.device))
                for job in jobs for i in range(job.n)]

    def _left_pad(self, prompts: list[list[int]]):
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p):] = 1
        return ids.to(self.device), mask.to(self.device)

    def generate(self, jobs: list[Job]) -> None:
        """Decode a batch to the end, sending each job its ``Delta``/``Finished`` events."""
        import torch

        from codemill.serve.sampling import sample_next

        with torch.inference_mode():
            rows = self._rows(jobs)
            temperature = torch.tensor([r.job.request.temperature for r in rows], device=self.device)
            top_p = torch.tensor([r.job.request.top_p for r in rows], device=self.device)
            input_ids, mask = self._left_pad([r.job.prompt_ids for r in rows])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                             use_cache=True, logits_to_keep=1)
            cache, next_pos = out.past_key_values, positions[:, -1] + 1
            logits = out.logits[:, -1, :]
            while True:
                tokens = sample_next(logits, temperature, top_p, [r.generator for r in rows]).tolist()
                keep = self._advance(rows, tokens)
                if not keep:
                    return
                if len(keep) < len(rows):
                    idx = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(idx)
                    mask, next_pos, temperature, top_p = mask[idx], next_pos[idx], temperature[idx], top_p[idx]
                    rows, tokens = [rows[j] for j in keep], [tokens[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                out = self.model(input_ids=torch.tensor(tokens, device=self.device)[:, None], attention_mask=mask,
                                 position_ids=next_pos[:, None], past_key_values=cache, use_cache=True)
                cache, next_pos = out.past_key_values, next_pos + 1
                logits = out.logits[:, -1, :]

    def _advance(self, rows: list[_Row], tokens: list[int]) -> list[int]:
        """Give each row its token; returns the positions of rows that go on."""
        now = time.perf_counter()
        keep = []
        for j, (row, token) in enumerate(zip(rows, tokens)):
            job = row.job
            if job.cancelled:
                continue
            if job.first_token_at is None:
                job.first_token_at = now
            delta = row.text.push(token)
            if delta:
                job.emit(Delta(row.index, delta))
            if row.text.finish_reason is None:
                keep.append(j)
            else:
                job.emit(Finished(row.index, row.text.finish_reason, len(row.text.tokens)))
        return keep
