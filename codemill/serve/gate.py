"""The rollout gate: metric thresholds a model must meet before it may serve.

Thresholds are data (a pipeline parameter), keyed by a dotted metric path into
evaluate's ``metrics.json`` plus a ``train`` namespace from train's ``stats.json``::

    {"humaneval.greedy.pass@1": {"min": 0.15},
     "heldout.perplexity": {"max": 8.0, "finite": true},
     "train.val_loss_drop": {"gt": 0.0}}

Rules: ``min`` (>=), ``max`` (<=), ``gt`` (>), ``lt`` (<), ``finite`` (not NaN/inf).
A metric that is missing, not a number, or NaN fails its check: the gate never passes by
default. ``train.val_loss_drop`` is derived as ``val_loss_start - val_loss_end``.
Key lookup prefers the longest key at each level, so keys that contain dots themselves
(``pass@1.5``) still resolve.
"""

from __future__ import annotations

import math
import operator

from codemill.stage import InputError

# What a tiny local model can pass and a broken run cannot: training lowered the
# validation loss, and held-out perplexity is a real number.
DEFAULT_GATE: dict[str, dict] = {
    "train.val_loss_drop": {"gt": 0.0},
    "heldout.perplexity": {"finite": True},
}

_COMPARE = {"min": (operator.ge, ">="), "max": (operator.le, "<="), "gt": (operator.gt, ">"), "lt": (operator.lt, "<")}


def check_gate_spec(gate: dict) -> None:
    """Reject a malformed gate before anything is decided with it."""
    if not isinstance(gate, dict):
        raise InputError(f"gate: expected a dict of metric path -> rules, got {type(gate).__name__}")
    for path, rules in gate.items():
        if not isinstance(rules, dict) or not rules:
            raise InputError(f"gate[{path!r}]: expected rules like {{\"min\": 0.1}}, got {rules!r}")
        for rule, bound in rules.items():
            if rule == "finite":
                if not isinstance(bound, bool):
                    raise InputError(f"gate[{path!r}].finite: expected true/false, got {bound!r}")
            elif rule not in _COMPARE:
                raise InputError(f"gate[{path!r}]: unknown rule {rule!r} (known: finite, {', '.join(_COMPARE)})")
            elif isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise InputError(f"gate[{path!r}].{rule}: expected a number, got {bound!r}")


def gate_metrics(eval_metrics: dict, train_stats: dict) -> dict:
    """Everything a gate may refer to: evaluate's benchmarks plus ``train.*``."""
    train = {k: v for k, v in train_stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "val_loss_start" in train and "val_loss_end" in train:
        train["val_loss_drop"] = train["val_loss_start"] - train["val_loss_end"]
    return {**eval_metrics, "train": train}


def lookup(metrics: dict, path: str):
    """The value at a dotted path; KeyError when absent."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if isinstance(metrics, dict) and key in metrics:
            if i == len(parts):
                return metrics[key]
            try:
                return lookup(metrics[key], ".".join(parts[i:]))
            except KeyError:
                continue
    raise KeyError(path)


def _check(metrics: dict, path: str, rules: dict) -> dict:
    entry = {"metric": path, "rules": rules, "value": None, "passed": False}
    try:
        value = lookup(metrics, path)
    except KeyError:
        return {**entry, "reason": f"{path}: missing from the metrics"}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {**entry, "reason": f"{path}: not a number ({value!r})"}
    entry["value"] = value
    if math.isnan(value):
        return {**entry, "reason": f"{path} is NaN"}
    for rule, bound in rules.items():
        if rule == "finite":
            if bound and not math.isfinite(value):
                return {**entry, "reason": f"{path} = {value} is not finite"}
            continue
        compare, symbol = _COMPARE[rule]
        if not compare(value, bound):
            return {**entry, "reason": f"{path} = {value:g} fails {symbol} {bound:g} ({rule})"}
    return {**entry, "passed": True, "reason": f"{path} = {value:g} meets {_describe(rules)}"}


def _describe(rules: dict) -> str:
    return ", ".join("finite" if r == "finite" else f"{_COMPARE[r][1]} {b:g}" for r, b in rules.items())


def evaluate_gate(metrics: dict, gate: dict) -> dict:
    """Check every threshold; ``passed`` only when all hold. ``reasons`` lists the failures."""
    check_gate_spec(gate)
    checks = [_check(metrics, path, rules) for path, rules in sorted(gate.items())]
    return {"passed": bool(checks) and all(c["passed"] for c in checks), "checks": checks,
            "reasons": [c["reason"] for c in checks if not c["passed"]] or
                       ([] if checks else ["the gate has no thresholds"])}
