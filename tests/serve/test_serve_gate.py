"""The rollout gate: generic thresholds over evaluate's metrics and train's stats."""

import pytest

from codemill.serve.gate import DEFAULT_GATE, evaluate_gate, gate_metrics, lookup
from codemill.stage import InputError

EVAL = {"humaneval": {"greedy": {"pass@1": 0.12}, "sampled": {"pass@1": 0.1, "pass@10": 0.3}},
        "heldout": {"perplexity": 7.5, "fim_exact_match": 0.2}, "mbpp": {"pass@1.5": 0.4}}
TRAIN = {"val_loss_start": 6.0, "val_loss_end": 2.0, "steps": 100, "tokens_per_second": 1e4, "note": "x"}


def test_default_gate_passes_a_model_that_learned():
    result = evaluate_gate(gate_metrics(EVAL, TRAIN), DEFAULT_GATE)
    assert result["passed"] and result["reasons"] == []
    assert {c["metric"]: c["value"] for c in result["checks"]} == {"heldout.perplexity": 7.5,
                                                                  "train.val_loss_drop": 4.0}


@pytest.mark.parametrize("train, heldout, reason", [
    ({"val_loss_start": 2.0, "val_loss_end": 2.5}, {"perplexity": 7.5}, "train.val_loss_drop = -0.5 fails > 0 (gt)"),
    (TRAIN, {"perplexity": float("inf")}, "heldout.perplexity = inf is not finite"),
    (TRAIN, {"perplexity": float("nan")}, "heldout.perplexity is NaN"),
    (TRAIN, {}, "heldout.perplexity: missing from the metrics"),
    ({"val_loss_end": 2.0}, {"perplexity": 7.5}, "train.val_loss_drop: missing from the metrics"),
    (TRAIN, {"perplexity": "7.5"}, "heldout.perplexity: not a number ('7.5')"),
])
def test_default_gate_fails_with_the_reason(train, heldout, reason):
    result = evaluate_gate(gate_metrics({"heldout": heldout}, train), DEFAULT_GATE)
    assert not result["passed"]
    assert result["reasons"] == [reason]


def test_production_style_thresholds():
    gate = {"humaneval.greedy.pass@1": {"min": 0.1}, "heldout.perplexity": {"max": 8.0, "finite": True},
            "heldout.fim_exact_match": {"gt": 0.25}, "mbpp.pass@1.5": {"lt": 0.5}}
    result = evaluate_gate(gate_metrics(EVAL, TRAIN), gate)
    assert not result["passed"]
    assert result["reasons"] == ["heldout.fim_exact_match = 0.2 fails > 0.25 (gt)"]
    assert [c["passed"] for c in result["checks"]] == [False, True, True, True]
    assert evaluate_gate(gate_metrics(EVAL, TRAIN), {"humaneval.sampled.pass@10": {"min": 0.3}})["passed"]


def test_bounds_are_inclusive_for_min_and_max():
    metrics = {"a": {"x": 1.0}}
    assert evaluate_gate(metrics, {"a.x": {"min": 1.0, "max": 1.0}})["passed"]
    assert not evaluate_gate(metrics, {"a.x": {"gt": 1.0}})["passed"]


def test_lookup_prefers_dotted_keys():
    assert lookup(EVAL, "mbpp.pass@1.5") == 0.4
    with pytest.raises(KeyError):
        lookup(EVAL, "mbpp.pass@2")


def test_empty_gate_never_passes():
    result = evaluate_gate(gate_metrics(EVAL, TRAIN), {})
    assert not result["passed"] and result["reasons"] == ["the gate has no thresholds"]


@pytest.mark.parametrize("gate", [[1], {"a.b": 0.1}, {"a.b": {}}, {"a.b": {"minimum": 1}}, {"a.b": {"min": "1"}},
                                  {"a.b": {"finite": "yes"}}, {"a.b": {"max": True}}])
def test_malformed_gate_is_an_input_error(gate):
    with pytest.raises(InputError):
        evaluate_gate({}, gate)
