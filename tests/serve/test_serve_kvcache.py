"""Joining caches and dropping padding leave every row's next-token logits unchanged."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from codemill.serve import kvcache


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def prefill(model, ids: list[int]):
    t = torch.tensor([ids])
    mask = torch.ones_like(t)
    out = model(input_ids=t, attention_mask=mask, position_ids=torch.arange(len(ids))[None], use_cache=True)
    return out.past_key_values, mask, out.logits[:, -1]


def step(model, cache, mask, tokens: list[int], positions: list[int]):
    mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
    out = model(
        input_ids=torch.tensor(tokens)[:, None],
        attention_mask=mask,
        position_ids=torch.tensor(positions)[:, None],
        past_key_values=cache,
        use_cache=True,
    )
    return out.past_key_values, mask, out.logits[:, -1]


@torch.inference_mode()
def test_join_then_drop_matches_rows_decoded_alone(model):
    short, long = [5, 17, 42], [7, 8, 9, 10, 11, 12, 13, 99, 100, 101]
    cache_s, mask_s, _ = prefill(model, short)
    cache_l, mask_l, _ = prefill(model, long)
    assert kvcache.joinable(cache_s)

    # Reference: each row alone, one step.
    _, _, ref_s = step(model, *prefill(model, short)[:2], [3], [len(short)])
    _, _, ref_l = step(model, *prefill(model, long)[:2], [4], [len(long)])

    cache, mask = kvcache.join(cache_l, mask_l, cache_s, mask_s)
    assert mask.tolist() == [[1] * 10, [0] * 7 + [1] * 3]
    cache, mask, logits = step(model, cache, mask, [4, 3], [len(long), len(short)])
    torch.testing.assert_close(logits[0], ref_l[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits[1], ref_s[0], atol=1e-5, rtol=1e-4)

    # The long row leaves: the short row's 7 leading padding columns go with it.
    cache.batch_select_indices(torch.tensor([1]))
    cache, mask = kvcache.drop_leading_padding(cache, mask[1:])
    assert mask.tolist() == [[1] * 4] and cache.get_seq_length() == 4
    _, _, logits = step(model, cache, mask, [21], [len(short) + 1])
    _, _, ref = step(model, *step(model, *prefill(model, short)[:2], [3], [len(short)])[:2], [21], [len(short) + 1])
    torch.testing.assert_close(logits[0], ref[0], atol=1e-5, rtol=1e-4)


def test_drop_keeps_everything_when_a_row_starts_at_column_zero(model):
    with torch.inference_mode():
        cache, mask, _ = prefill(model, [1, 2, 3])
    same_cache, same_mask = kvcache.drop_leading_padding(cache, mask)
    assert same_cache is cache and same_mask is mask
