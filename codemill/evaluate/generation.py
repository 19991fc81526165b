"""Batched generation with the trained model: greedy or sampled, stop sequences, max new tokens.

This is the GPU part of the stage (``eval_generate`` in the pipeline). Prompts are token id
lists, sorted by length and left-padded into batches; a stopping criterion decodes each
row's new tokens and ends the row once its text holds a stop sequence (or enough lines),
so a batch ends when its slowest row does. Sampling is seeded per batch: the same
prompts, config and seed give the same completions on the same hardware.

FIM prompts are assembled from token ids (``begin + prefix + hole + suffix + end``) so
sentinel text that happens to occur inside a source file stays ordinary text.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, StoppingCriteria, StoppingCriteriaList

from codemill import io
from codemill.fim import sentinels
from codemill.stage import InputError


class Generator:
    """A model and its tokenizer, ready for batched completion."""

    def __init__(self, model_dir: str, device: str = "auto", dtype: str = "auto"):
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self._tmp = tempfile.TemporaryDirectory(prefix="codemill-model-") if io.is_s3(model_dir) else None
        local = io.download_dir(model_dir, self._tmp.name) if self._tmp else io.local_path(model_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(local)
            self.model = AutoModelForCausalLM.from_pretrained(local, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as e:
            raise InputError(f"{model_dir}: not a loadable Hugging Face model directory: {e}") from e
        self.model.to(self.device).eval()
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)
        tok = self.tokenizer
        self.eos_id = tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_id
        self.bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        # a chat model ends its turn with its own token (<|im_end|>) as well as EOS: generation_config says which
        self.stop_ids = self.model.generation_config.eos_token_id or self.eos_id
        self.model_dir = model_dir

    # ------------------------------------------------------------------------ prompts

    def encode(self, text: str) -> list[int]:
        return self.bos + self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_chat(self, messages: list[dict], prefill: str = "") -> list[int]:
        """Token ids of ``messages`` through the model's chat template, ready for the assistant's
        reply; ``prefill`` starts that reply (EvalPlus's split-at-a-marker way, so the template's
        own assistant header is used)."""
        tok = self.tokenizer
        if not tok.chat_template:
            raise InputError(
                f"{self.model_dir}: the model has no chat template, which --prompt-style chat needs "
                "(codemill sft saves one with the model)"
            )
        if prefill:
            marker = "-[[]]-codemill-prefill-[[]]-"  # any text no template or reply holds
            turns = messages + [{"role": "assistant", "content": prefill + marker}]
            text = tok.apply_chat_template(turns, tokenize=False).split(marker)[0]
        else:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if self.bos and not (tok.bos_token and text.startswith(tok.bos_token)):
            ids = self.bos + ids  # as codemill sft trained it (docs/sft.md): BOS, then the template
        return ids

    def _plain(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def fim_ids(self) -> list[int]:
        """Token ids of the FIM sentinels; a model without them cannot be asked to infill."""
        ids = []
        for text in sentinels():
            token = self.tokenizer.convert_tokens_to_ids(text)
            if token is None or token == self.tokenizer.unk_token_id:
                raise InputError(f"the model's tokenizer has no FIM sentinel token {text!r}")
            ids.append(token)
        return ids

    def encode_fim(self, prefix: str, suffix: str, budget: int) -> tuple[list[int], bool]:
        """PSM prompt within ``budget`` tokens: keep the end of the prefix and the start of the
        suffix, sharing the budget (the suffix gets at most half)."""
        begin, hole, end = self.fim_ids()
        pre, suf = self._plain(prefix), self._plain(suffix)
        room = budget - len(self.bos) - 3
        keep_suf = min(len(suf), room // 2)
        keep_pre = min(len(pre), room - keep_suf)
        keep_suf = min(len(suf), room - keep_pre)
        ids = self.bos + [begin] + pre[len(pre) - keep_pre :] + [hole] + suf[:keep_suf] + [end]
        return ids, keep_pre < len(pre) or keep_suf < len(suf)

    def budget(self, max_new_tokens: int) -> int:
        room = self.context - max_new_tokens
        if room < 16:
            raise InputError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the "
                f"model's {self.context}-token context"
            )
        return room

    def fit(self, ids: list[int], max_new_tokens: int) -> tuple[list[int], bool]:
        """Keep the last tokens of a prompt that would not fit the context (after BOS)."""
        room = self.budget(max_new_tokens)
        if len(ids) <= room:
            return ids, False
        return self.bos + ids[len(ids) - room + len(self.bos) :], True

    # ------------------------------------------------------------------------ generation

    def complete(
        self,
        prompts: Sequence[list[int]],
        max_new_tokens: int,
        stop: Sequence[str] = (),
        max_lines: Sequence[int] | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        desc: str = "generate",
    ) -> list[str]:
        """One completion per prompt (decoded new text, cut at the first stop sequence)."""
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=top_p if sample else None,
            top_k=0 if sample else None,
            pad_token_id=self.pad_id,
            eos_token_id=self.stop_ids,
        )
        order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
        texts: list[str] = [""] * len(prompts)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for number, rows in enumerate(tqdm(batches, desc=desc, file=sys.stderr, disable=len(batches) < 2)):
            width = max(len(prompts[i]) for i in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]) :] = 1
            lines = [max_lines[i] for i in rows] if max_lines is not None else None
            criterion = _StopOnText(self.tokenizer, width, tuple(stop), lines)
            torch.manual_seed(seed * 1_000_003 + number)
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=config,
                    stopping_criteria=StoppingCriteriaList([criterion]),
                )
            for r, i in enumerate(rows):
                texts[i] = cut(
                    self.tokenizer.decode(out[r, width:], skip_special_tokens=True), stop, lines[r] if lines else None
                )
        return texts


def cut(text: str, stop: Sequence[str], max_lines: int | None = None) -> str:
    """Text up to the first stop sequence, and at most ``max_lines`` lines (newlines kept)."""
    positions = [i for i in (text.find(s) for s in stop) if i >= 0]
    text = text[: min(positions)] if positions else text
    if max_lines is not None:
        text = "".join(text.splitlines(keepends=True)[:max_lines])
    return text


class _StopOnText(StoppingCriteria):
    """Per-row stop: the row's new text holds a stop sequence, or its line quota."""

    def __init__(self, tokenizer, start: int, stop: tuple[str, ...], max_lines: list[int] | None):
        self.tokenizer, self.start, self.stop, self.max_lines = tokenizer, start, stop, max_lines

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        done = []
        for r, text in enumerate(texts):
            hit = any(s in text for s in self.stop)
            if self.max_lines is not None:
                hit = hit or text.count("\n") >= self.max_lines[r]
            done.append(hit)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
