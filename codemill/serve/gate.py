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

A model that passes these is then compared with the current champion
(``compare_with_champion``, below); the first model, with no champion, is judged by these
rules alone.
"""

from __future__ import annotations

import math
import operator
import re

from codemill.stage import InputError, numeric_metrics

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
            raise InputError(f'gate[{path!r}]: expected rules like {{"min": 0.1}}, got {rules!r}')
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
    return {
        "passed": bool(checks) and all(c["passed"] for c in checks),
        "checks": checks,
        "reasons": [c["reason"] for c in checks if not c["passed"]]
        or ([] if checks else ["the gate has no thresholds"]),
    }


# ---- champion versus challenger
#
# The absolute rules above only catch a broken model; a worse one passes them. So a
# challenger is also compared with the model that holds the alias (the champion), on the
# metrics the registry recorded for it at registration: held-out perplexity (lower is
# better) and every pass@k (higher is better). ``max_regression`` is the share of the
# champion's value the challenger may lose: 0.05 lets perplexity rise to 1.05x and pass@1
# fall to 0.95x the champion's.

TASKS_TOTAL = "tasks_total"


def direction(path: str) -> str | None:
    """ "lower" or "higher" for a metric the champion comparison uses, else None."""
    if path == "heldout.perplexity":
        return "lower"
    if re.fullmatch(r"pass@\d+", path.rsplit(".", 1)[-1]):
        return "higher"
    return None


def comparable_metrics(eval_metrics: dict) -> dict[str, float]:
    """The metrics recorded with a registered version: those with a direction, plus each
    benchmark's ``tasks_total`` (a pass@k over 20 tasks is not compared with one over 164)."""
    flat = numeric_metrics(eval_metrics)
    return {k: v for k, v in flat.items() if direction(k) or k.rsplit(".", 1)[-1] == TASKS_TOTAL}


def _tasks_total(metrics: dict, path: str):
    return metrics.get(f"{path.rsplit('.', 1)[0]}.{TASKS_TOTAL}") if "." in path else None


def _compare(path: str, value, best: float, max_regression: float, tasks: tuple) -> dict:
    better = direction(path)
    entry = {
        "metric": path,
        "direction": better,
        "challenger": value,
        "champion": best,
        "allowed": None,
        "passed": False,
    }
    if not math.isfinite(best):
        return {**entry, "passed": True, "reason": f"{path}: not compared (the champion's value is {best})"}
    if tasks[0] is not None and tasks[1] is not None and tasks[0] != tasks[1]:
        return {
            **entry,
            "passed": True,
            "reason": f"{path}: not compared (champion scored on {tasks[0]:g} tasks, challenger on {tasks[1]:g})",
        }
    if value is None:
        return {**entry, "reason": f"{path}: missing from the challenger's metrics (the champion has {best:g})"}
    if not math.isfinite(value):
        return {**entry, "reason": f"{path} = {value} is not finite (champion {best:g})"}
    if better == "lower":
        allowed, ok, symbol = best * (1 + max_regression), value <= best * (1 + max_regression), "<="
    else:
        allowed, ok, symbol = best * (1 - max_regression), value >= best * (1 - max_regression), ">="
    entry.update(allowed=allowed, passed=ok)
    verdict = "holds" if ok else "regresses:"
    return {
        **entry,
        "reason": f"{path} = {value:g} {verdict} champion {best:g}, {better} is better, "
        f"allowed {symbol} {allowed:g} (max_regression {max_regression:g})",
    }


def compare_with_champion(challenger: dict[str, float], champion: dict[str, float], max_regression: float) -> dict:
    """Every metric the champion was recorded with must not regress beyond ``max_regression``.

    A metric the challenger lacks fails (the gate never passes by default); one scored on a
    different number of tasks, or whose champion value is not finite, is not compared.
    """
    if isinstance(max_regression, bool) or not isinstance(max_regression, (int, float)) or not max_regression >= 0:
        raise InputError(f"max_regression: expected a number >= 0, got {max_regression!r}")
    checks = [
        _compare(
            path,
            challenger.get(path),
            best,
            max_regression,
            (_tasks_total(champion, path), _tasks_total(challenger, path)),
        )
        for path, best in sorted(champion.items())
        if direction(path)
    ]
    return {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "max_regression": max_regression,
        "reasons": [c["reason"] for c in checks if not c["passed"]],
    }
