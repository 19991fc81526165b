"""TrainState goes into state.pt with asdict and comes back field for field."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from codemill.train.checkpoint import TrainState, load_state, save_state, set_rng_state


def test_train_state_round_trips_with_the_rng_and_the_backend_state(tmp_path):
    state = TrainState(
        step=7,
        tokens=12_345,
        train_seconds=3.5,
        val_loss_start=6.25,
        history=[{"step": 2, "loss": 5.5, "lr": 1e-3, "grad_norm": 0.7, "tokens_per_second": 9.0}],
        val_history=[{"step": 0, "val_loss": 6.25}, {"step": 3, "val_loss": 5.9}],
    )
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.manual_seed(11)
    random.seed(11)
    save_state(str(tmp_path), state, {"model": weights})
    expected_draw, expected_random = torch.rand(3), random.random()

    loaded, rng, backend_state = load_state(str(tmp_path))
    assert loaded == state and dataclasses.asdict(loaded) == dataclasses.asdict(state)
    assert backend_state.keys() == {"model"} and torch.equal(backend_state["model"]["w"], weights["w"])
    torch.manual_seed(0)
    random.seed(0)
    set_rng_state(rng)  # the generators continue where they were when the checkpoint was written
    assert torch.equal(torch.rand(3), expected_draw) and random.random() == expected_random


def test_a_state_file_missing_a_field_is_not_loaded_half(tmp_path):
    values = dataclasses.asdict(TrainState(step=3))
    del values["val_history"]
    torch.save({**values, "rng": {}}, tmp_path / "state.pt")
    with pytest.raises(KeyError, match="val_history"):
        load_state(str(tmp_path))
