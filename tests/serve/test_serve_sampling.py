"""Per-row sampling: greedy is argmax, seeded rows do not depend on their batch neighbours."""

import torch

from codemill.serve.sampling import row_generator, sample_next


def draw(logits, temps, top_ps, seeds, steps=20):
    gens = [row_generator(s, 0) for s in seeds]
    out = []
    for _ in range(steps):
        out.append(sample_next(logits, torch.tensor(temps), torch.tensor(top_ps), gens).tolist())
    return list(zip(*out))


def test_greedy_rows_are_argmax_and_use_no_randomness():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    rows = draw(logits, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [None, None, None], steps=3)
    assert [r[0] for r in rows] == logits.argmax(-1).tolist()
    assert all(len(set(r)) == 1 for r in rows)


def test_seeded_row_is_the_same_alone_and_batched():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 100, generator=g)
    alone = draw(logits[2:3], [0.8], [0.95], [42])[0]
    batched = draw(logits, [1.0, 0.0, 0.8, 0.5], [1.0, 1.0, 0.95, 0.5], [1, None, 42, 7])[2]
    assert alone == batched
    assert len(set(alone)) > 1  # it really sampled


def test_choices_of_one_request_get_different_streams():
    a, b = row_generator(5, 0), row_generator(5, 1)
    assert torch.rand(4, generator=a).tolist() != torch.rand(4, generator=b).tolist()
    again = row_generator(5, 1)
    assert torch.rand(4, generator=again).tolist() == torch.rand(4, generator=row_generator(5, 1)).tolist()


def test_tiny_top_p_keeps_only_the_most_likely_token():
    logits = torch.randn(2, 30, generator=torch.Generator().manual_seed(3))
    rows = draw(logits, [1.5, 1.5], [1e-6, 1e-6], [1, 2])
    assert [set(r) for r in rows] == [{logits[0].argmax().item()}, {logits[1].argmax().item()}]


def _frequencies(probs: list[float], top_p: float, draws: int = 6000) -> list[float]:
    logits = torch.log(torch.tensor([probs] * draws))
    gens = [row_generator(1000 + i, 0) for i in range(draws)]
    picks = sample_next(logits, torch.ones(draws), torch.full((draws,), top_p), gens)
    return (torch.bincount(picks, minlength=len(probs)).float() / draws).tolist()


def test_sampling_follows_the_distribution():
    freq = _frequencies([0.1, 0.2, 0.3, 0.4], top_p=1.0)
    assert all(abs(f - p) < 0.03 for f, p in zip(freq, [0.1, 0.2, 0.3, 0.4])), freq


def test_top_p_renormalises_over_the_nucleus():
    freq = _frequencies([0.4, 0.3, 0.2, 0.1], top_p=0.5)  # keeps the first two: 0.4 + 0.3
    assert freq[2] == freq[3] == 0.0
    assert abs(freq[0] - 4 / 7) < 0.03 and abs(freq[1] - 3 / 7) < 0.03, freq
