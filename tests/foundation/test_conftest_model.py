"""The shared tiny model fixture loads with the standard HF API and generates."""

from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import FIM_TOKENS


def test_tiny_model_loads_and_generates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = tok("def add(a, b):", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    for t in FIM_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1
