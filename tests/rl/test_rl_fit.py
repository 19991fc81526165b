"""The ScaleRL sigmoid fit recovers a known curve and waits for enough points."""

from __future__ import annotations

import numpy as np
import pytest

from codemill.rl.fit import fit, plot, sigmoid


def test_fit_recovers_the_parameters_of_a_noisy_curve(tmp_path):
    compute = np.geomspace(1e12, 1e15, 12)
    rng = np.random.default_rng(0)
    rate = sigmoid(compute, 0.62, 1.4, 3e13) + rng.normal(0, 0.005, compute.shape)
    result = fit(list(compute), list(rate), min_points=4)
    assert result["A"] == pytest.approx(0.62, abs=0.02)
    assert result["B"] == pytest.approx(1.4, rel=0.15)
    assert result["C_mid"] == pytest.approx(3e13, rel=0.2)
    assert result["rmse"] < 0.01 and result["points"] == 12
    plot(list(compute), list(rate), result, str(tmp_path / "fit.png"), "FLOPs")
    assert (tmp_path / "fit.png").stat().st_size > 1000


def test_no_fit_before_enough_points_and_zero_compute_is_left_out():
    assert fit([0.0, 1.0, 2.0, 3.0], [0.0, 0.1, 0.2, 0.3], min_points=4) is None
    assert fit([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.35], min_points=4, skip=1) is None
    assert fit([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.35], min_points=4) is not None
