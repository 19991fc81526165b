"""Log-probabilities for ``logprobs`` and ``echo``: computed from the model's logits, shaped as OpenAI's.

Values are ``log_softmax`` of the model's raw logits in float32, before temperature and
top_p (what vLLM reports by default), so they equal a plain transformers forward pass on
the same ids; the top alternatives are the ``k`` most likely tokens at that position.
With ``echo``, the prompt's tokens get theirs too, the first one ``None`` (nothing
predicts it): what lm-evaluation-harness's loglikelihood requests read.

The response object is the legacy completions one, per choice::

    {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}, ...],
     "text_offset": [...]}

``top_logprobs`` holds the ``k`` alternatives plus the token itself (so up to k + 1, as
OpenAI documents). Token strings are each token decoded alone; a token that is half a
UTF-8 character decodes to U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenLogprob:
    token: int
    logprob: float
    top: list[tuple[int, float]]


def sampled(logits, tokens: list[int], ks: list[int | None]) -> list[TokenLogprob | None]:
    """Per row, the sampled token's log-probability and its ``k`` best alternatives (None where k is None)."""
    import torch

    rows = [r for r, k in enumerate(ks) if k is not None]
    out: list[TokenLogprob | None] = [None] * len(ks)
    if not rows:
        return out
    idx = torch.tensor(rows, device=logits.device)
    lp = torch.log_softmax(logits[idx].float(), dim=-1)
    chosen = lp.gather(1, torch.tensor([tokens[r] for r in rows], device=logits.device)[:, None]).squeeze(1)
    k_max = max(ks[r] for r in rows)
    top_lp, top_ids = lp.topk(k_max, dim=-1) if k_max else (lp[:, :0], lp[:, :0].long())
    for j, r in enumerate(rows):
        k = ks[r]
        out[r] = TokenLogprob(tokens[r], float(chosen[j]), list(zip(top_ids[j, :k].tolist(), top_lp[j, :k].tolist())))
    return out


def prompt(logits, ids: list[int], k: int) -> list[TokenLogprob | None]:
    """``logits [len(ids), vocab]`` of a prompt's positions -> each prompt token's entry, the first None."""
    import torch

    lp = torch.log_softmax(logits[:-1].float(), dim=-1)
    target = torch.tensor(ids[1:], device=logits.device)[:, None]
    chosen = lp.gather(1, target).squeeze(1).tolist()
    top_lp, top_ids = lp.topk(k, dim=-1) if k else (lp[:, :0], lp[:, :0].long())
    entries = [
        TokenLogprob(t, c, list(zip(i, v))) for t, c, i, v in zip(ids[1:], chosen, top_ids.tolist(), top_lp.tolist())
    ]
    return [None, *entries] if ids else []


class LogprobsText:
    """Builds OpenAI's logprobs objects for one choice; offsets continue across a stream's chunks."""

    def __init__(self, tokenizer, offset: int = 0):
        self.tokenizer, self.offset = tokenizer, offset

    def _text(self, token: int) -> str:
        return self.tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def render(self, entries: list[TokenLogprob | None], first_token: int | None = None) -> dict:
        """``entries`` in order; a None entry (the first prompt token) is ``first_token`` with no log-probability."""
        out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for entry in entries:
            token = first_token if entry is None else entry.token
            text = self._text(token)
            out["tokens"].append(text)
            out["text_offset"].append(self.offset)
            self.offset += len(text)
            if entry is None:
                out["token_logprobs"].append(None)
                out["top_logprobs"].append(None)
                continue
            out["token_logprobs"].append(entry.logprob)
            top = {self._text(t): lp for t, lp in entry.top}
            top.setdefault(text, entry.logprob)
            out["top_logprobs"].append(top)
        return out


def merge(a: dict | None, b: dict) -> dict:
    if a is None:
        return b
    return {key: a[key] + b[key] for key in a}
