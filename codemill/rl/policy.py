"""Sampling groups of completions and scoring their tokens under a model (torch, transformers).

Prompts are left-padded and completions right-padded in one ``[B, P + T]`` tensor, so the
log-probabilities of completion tokens are ``logits[:, P-1:-1]``; position ids are taken
from the attention mask, as ``generate`` does for left padding, so the tokens are scored at
the positions they were sampled at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollouts:
    sequences: torch.Tensor  # [B, P + T]
    attention: torch.Tensor  # [B, P + T]
    prompt_width: int  # P
    completion_ids: torch.Tensor  # [B, T]
    completion_mask: torch.Tensor  # [B, T]: tokens up to and including EOS
    lengths: list[int]
    truncated: list[bool]  # no EOS within the limit
    texts: list[str]


def encode_prompt(tokenizer, text: str, chat: bool, max_tokens: int) -> list[int]:
    if chat:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # a BatchEncoding in some versions
    else:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        if tokenizer.bos_token_id is not None and (not ids or ids[0] != tokenizer.bos_token_id):
            ids = [tokenizer.bos_token_id] + ids
    return ids[-max_tokens:]


def _left_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return ids, mask


def stop_ids(model, tokenizer) -> list[int]:
    """EOS ids: the tokenizer's and the generation config's (a chat model may end turns with another token)."""
    ids = [tokenizer.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    return sorted({int(i) for i in ids if i is not None})


@torch.no_grad()
def sample(
    model, tokenizer, prompts: list[list[int]], group: int, max_new: int, temperature: float, top_p: float, device
) -> Rollouts:
    """``group`` sampled completions per prompt, in prompt order (rows ``i*group .. i*group+group-1``)."""
    rows = [p for p in prompts for _ in range(group)]
    stops = stop_ids(model, tokenizer)
    ids, mask = _left_pad(rows, tokenizer.pad_token_id)
    ids, mask = ids.to(device), mask.to(device)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,
        max_new_tokens=max_new,
        min_new_tokens=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stops,
    )
    width = ids.shape[1]
    completion = out[:, width:]
    if completion.shape[1] < max_new:  # every row stopped early; pad to the limit for a fixed shape
        pad = torch.full(
            (completion.shape[0], max_new - completion.shape[1]),
            tokenizer.pad_token_id,
            dtype=completion.dtype,
            device=completion.device,
        )
        completion = torch.cat([completion, pad], dim=1)
    is_eos = torch.isin(completion, torch.tensor(stops, device=completion.device))
    has_eos = is_eos.any(dim=1)
    first = torch.where(has_eos, is_eos.int().argmax(dim=1), torch.full_like(has_eos, max_new, dtype=torch.long))
    lengths = torch.where(has_eos, first + 1, first)
    cmask = (torch.arange(max_new, device=completion.device)[None, :] < lengths[:, None]).long()
    completion = torch.where(cmask.bool(), completion, torch.full_like(completion, tokenizer.pad_token_id))
    texts = [
        tokenizer.decode(completion[i, : first[i]].tolist(), skip_special_tokens=True)
        for i in range(completion.shape[0])
    ]
    return Rollouts(
        torch.cat([ids, completion], dim=1),
        torch.cat([mask, cmask], dim=1),
        width,
        completion,
        cmask,
        lengths.tolist(),
        (~has_eos).tolist(),
        texts,
    )


def token_logprobs(
    model,
    sequences: torch.Tensor,
    attention: torch.Tensor,
    prompt_width: int,
    completion_ids: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per completion token: log-probability at ``temperature`` and the entropy of the distribution."""
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=sequences, attention_mask=attention, position_ids=positions, use_cache=False).logits
    logits = logits[:, prompt_width - 1 : -1].float() / temperature  # fp32 logits (ScaleRL)
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        detached = logp_all.detach()
        entropy = -(detached.exp() * detached).sum(-1)
    return logp, entropy
