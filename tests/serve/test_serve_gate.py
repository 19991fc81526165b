"""The rollout gate: generic thresholds over evaluate's metrics and train's stats."""

import pytest

from codemill.serve.gate import (
    DEFAULT_GATE,
    comparable_metrics,
    compare_with_champion,
    direction,
    evaluate_gate,
    gate_metrics,
    lookup,
)
from codemill.stage import InputError

EVAL = {
    "humaneval": {"greedy": {"pass@1": 0.12}, "sampled": {"pass@1": 0.1, "pass@10": 0.3}},
    "heldout": {"perplexity": 7.5, "fim_exact_match": 0.2},
    "mbpp": {"pass@1.5": 0.4},
}
TRAIN = {"val_loss_start": 6.0, "val_loss_end": 2.0, "steps": 100, "tokens_per_second": 1e4, "note": "x"}


def test_default_gate_passes_a_model_that_learned():
    result = evaluate_gate(gate_metrics(EVAL, TRAIN), DEFAULT_GATE)
    assert result["passed"] and result["reasons"] == []
    assert {c["metric"]: c["value"] for c in result["checks"]} == {
        "heldout.perplexity": 7.5,
        "train.val_loss_drop": 4.0,
    }


@pytest.mark.parametrize(
    "train, heldout, reason",
    [
        (
            {"val_loss_start": 2.0, "val_loss_end": 2.5},
            {"perplexity": 7.5},
            "train.val_loss_drop = -0.5 fails > 0 (gt)",
        ),
        (TRAIN, {"perplexity": float("inf")}, "heldout.perplexity = inf is not finite"),
        (TRAIN, {"perplexity": float("nan")}, "heldout.perplexity is NaN"),
        (TRAIN, {}, "heldout.perplexity: missing from the metrics"),
        ({"val_loss_end": 2.0}, {"perplexity": 7.5}, "train.val_loss_drop: missing from the metrics"),
        (TRAIN, {"perplexity": "7.5"}, "heldout.perplexity: not a number ('7.5')"),
    ],
)
def test_default_gate_fails_with_the_reason(train, heldout, reason):
    result = evaluate_gate(gate_metrics({"heldout": heldout}, train), DEFAULT_GATE)
    assert not result["passed"]
    assert result["reasons"] == [reason]


def test_production_style_thresholds():
    gate = {
        "humaneval.greedy.pass@1": {"min": 0.1},
        "heldout.perplexity": {"max": 8.0, "finite": True},
        "heldout.fim_exact_match": {"gt": 0.25},
        "mbpp.pass@1.5": {"lt": 0.5},
    }
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


@pytest.mark.parametrize(
    "gate",
    [
        [1],
        {"a.b": 0.1},
        {"a.b": {}},
        {"a.b": {"minimum": 1}},
        {"a.b": {"min": "1"}},
        {"a.b": {"finite": "yes"}},
        {"a.b": {"max": True}},
    ],
)
def test_malformed_gate_is_an_input_error(gate):
    with pytest.raises(InputError):
        evaluate_gate({}, gate)


# ---- champion versus challenger

CHAMPION = {
    "heldout.perplexity": 8.0,
    "humaneval.greedy.pass@1": 0.20,
    "humaneval.greedy.tasks_total": 20.0,
    "humaneval.sampled.pass@10": 0.40,
    "humaneval.sampled.tasks_total": 20.0,
}


def test_comparable_metrics_are_perplexity_pass_at_k_and_task_counts():
    metrics = {
        "humaneval": {"greedy": {"pass@1": 0.1, "tasks_total": 20, "exact_match": 0.3}},
        "heldout": {"perplexity": 7.5, "fim_exact_match": 0.2},
        "mbpp": {"pass@1.5": 0.4},
    }
    assert comparable_metrics(metrics) == {
        "heldout.perplexity": 7.5,
        "humaneval.greedy.pass@1": 0.1,
        "humaneval.greedy.tasks_total": 20.0,
    }
    assert [direction(p) for p in ("heldout.perplexity", "x.greedy.pass@10", "heldout.fim_exact_match")] == [
        "lower",
        "higher",
        None,
    ]


def test_a_challenger_at_least_as_good_as_the_champion_passes():
    better = {**CHAMPION, "heldout.perplexity": 7.9, "humaneval.greedy.pass@1": 0.25}
    result = compare_with_champion(better, CHAMPION, max_regression=0.0)
    assert result["passed"] and result["reasons"] == []
    assert compare_with_champion(dict(CHAMPION), CHAMPION, 0.0)["passed"]  # a tie is no regression
    assert [c["metric"] for c in result["checks"]] == [
        "heldout.perplexity",
        "humaneval.greedy.pass@1",
        "humaneval.sampled.pass@10",
    ]


@pytest.mark.parametrize(
    "metric, value, reason",
    [
        (
            "heldout.perplexity",
            8.5,
            "heldout.perplexity = 8.5 regresses: champion 8, lower is better, allowed <= 8 (max_regression 0)",
        ),
        (
            "humaneval.greedy.pass@1",
            0.15,
            "humaneval.greedy.pass@1 = 0.15 regresses: champion 0.2, higher is better, "
            "allowed >= 0.2 (max_regression 0)",
        ),
        ("humaneval.sampled.pass@10", float("nan"), "humaneval.sampled.pass@10 = nan is not finite (champion 0.4)"),
        (
            "humaneval.sampled.pass@10",
            None,
            "humaneval.sampled.pass@10: missing from the challenger's metrics (the champion has 0.4)",
        ),
    ],
)
def test_a_regression_is_refused_with_both_values_and_the_reason(metric, value, reason):
    challenger = {**CHAMPION, metric: value}
    if value is None:
        del challenger[metric]
    result = compare_with_champion(challenger, CHAMPION, max_regression=0.0)
    assert not result["passed"] and result["reasons"] == [reason]
    check = next(c for c in result["checks"] if c["metric"] == metric)
    assert check["champion"] == CHAMPION[metric] and not check["passed"]


def test_max_regression_is_a_share_of_the_champions_value():
    worse = {**CHAMPION, "heldout.perplexity": 8.3, "humaneval.greedy.pass@1": 0.195}
    assert compare_with_champion(worse, CHAMPION, max_regression=0.05)["passed"]  # <= 8.4 and >= 0.19
    tighter = compare_with_champion(worse, CHAMPION, max_regression=0.02)  # <= 8.16 and >= 0.196
    assert [c["metric"] for c in tighter["checks"] if not c["passed"]] == [
        "heldout.perplexity",
        "humaneval.greedy.pass@1",
    ]


def test_metrics_scored_on_different_task_counts_are_not_compared():
    challenger = {**CHAMPION, "humaneval.greedy.pass@1": 0.05, "humaneval.greedy.tasks_total": 164.0}
    result = compare_with_champion(challenger, CHAMPION, max_regression=0.0)
    check = next(c for c in result["checks"] if c["metric"] == "humaneval.greedy.pass@1")
    assert result["passed"] and check["allowed"] is None
    assert check["reason"] == ("humaneval.greedy.pass@1: not compared (champion scored on 20 tasks, challenger on 164)")


@pytest.mark.parametrize("bad", [-0.1, "0.1", True, float("nan")])
def test_max_regression_must_be_a_non_negative_number(bad):
    with pytest.raises(InputError, match="max_regression"):
        compare_with_champion(CHAMPION, CHAMPION, bad)
