"""Batched generation with the tiny model: greedy/sampled, stops, FIM prompts, context limits."""

import pytest
import torch

from codemill import fim
from codemill.evaluate.generation import Generator, _StopOnText, cut
from codemill.stage import InputError
from tests.conftest import FIM_TOKENS


@pytest.fixture(scope="module")
def gen(tiny_model_dir):
    torch.set_num_threads(1)
    return Generator(tiny_model_dir, device="cpu")


PROMPTS = ["def add(a, b):\n", "import os\n\n\ndef main():\n    ", "class Stack:\n    def push(self, x):\n"]


def test_greedy_is_deterministic_and_bounded(gen):
    ids = [gen.encode(p) for p in PROMPTS]
    first = gen.complete(ids, max_new_tokens=12, batch_size=2)
    assert first == gen.complete(ids, max_new_tokens=12, batch_size=2)
    assert len(first) == 3
    for text in first:
        assert len(gen.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 12


def test_sampling_is_seeded(gen):
    ids = [gen.encode(p) for p in PROMPTS] * 2
    kwargs = dict(max_new_tokens=10, sample=True, temperature=1.0, top_p=1.0, batch_size=3)
    a = gen.complete(ids, seed=1, **kwargs)
    assert a == gen.complete(ids, seed=1, **kwargs)
    assert a != gen.complete(ids, seed=2, **kwargs)


def test_stop_sequences_cut_and_stop_rows(gen):
    assert cut("    return 1\ndef g():", ("\ndef",)) == "    return 1"
    assert cut("a\nb\nc\n", (), max_lines=2) == "a\nb\n"
    texts = gen.complete([gen.encode(p) for p in PROMPTS], max_new_tokens=16, stop=("\n",), batch_size=3)
    assert all("\n" not in t for t in texts)
    rows = [
        gen.tokenizer("x = 1\ny", add_special_tokens=False)["input_ids"],
        gen.tokenizer("x = 1 + y", add_special_tokens=False)["input_ids"],
    ]
    width = max(len(r) for r in rows)
    batch = torch.tensor([[gen.pad_id] * (width - len(r)) + r for r in rows])
    done = _StopOnText(gen.tokenizer, 0, ("\ny",), None)(batch, None)
    assert done.tolist() == [True, False]
    by_lines = _StopOnText(gen.tokenizer, 0, (), [1, 1])(batch, None)
    assert by_lines.tolist() == [True, False]


def test_fim_prompt_ids(gen):
    begin, hole, end = gen.fim_ids()
    assert [gen.tokenizer.convert_ids_to_tokens(i) for i in (begin, hole, end)] == FIM_TOKENS
    ids, truncated = gen.encode_fim("def f(x):\n", "\n    return y\n", budget=200)
    assert not truncated and ids[0] == gen.bos[0] and ids[1] == begin and ids[-1] == end
    assert ids.index(hole) > 1
    # Sentinel text inside the code stays plain text (it is not the special token).
    ids, _ = gen.encode_fim(f"s = '{FIM_TOKENS[1]}'\n", "", budget=200)
    assert ids.count(hole) == 1
    long_prefix = "x = 1\n" * 400
    ids, truncated = gen.encode_fim(long_prefix, "y = 2\n" * 400, budget=100)
    assert truncated and len(ids) == 100 and ids[1] == begin and ids[-1] == end


def test_context_fitting(gen):
    ids = gen.encode("a = 1\n" * 1000)
    fitted, truncated = gen.fit(ids, max_new_tokens=64)
    assert truncated and len(fitted) == gen.context - 64 and fitted[0] == gen.bos[0] and fitted[-1] == ids[-1]
    assert gen.fit(ids[:10], 64) == (ids[:10], False)
    with pytest.raises(InputError, match="no room"):
        gen.budget(gen.context)


def test_missing_sentinels_and_bad_model_dir(gen, monkeypatch, tmp_path):
    monkeypatch.setattr("codemill.evaluate.generation.sentinels", lambda: ("<nope>", "<hole>", "<end>"))
    with pytest.raises(InputError, match="no FIM sentinel"):
        gen.fim_ids()
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="not a loadable"):
        Generator(str(tmp_path), device="cpu")
    assert fim.sentinels() == tuple(FIM_TOKENS)
