"""Reading pack's arrays and the data order: deterministic, complete per epoch, disjoint per rank."""

from __future__ import annotations

import numpy as np
import pytest

from codemill.stage import InputError
from codemill.train.data import load_split, step_rows
from tests.train.packed_corpus import write_split


def test_one_epoch_visits_every_row_once_and_ranks_do_not_overlap():
    n, batch, accum, world = 48, 3, 2, 2
    steps_per_epoch = n // (batch * accum * world)
    seen = []
    for step in range(steps_per_epoch):
        per_rank = [
            np.concatenate([step_rows(n, 7, step, m, batch, accum, r, world) for m in range(accum)])
            for r in range(world)
        ]
        assert not set(per_rank[0]) & set(per_rank[1])
        seen += [int(i) for rows in per_rank for i in rows]
    assert sorted(seen) == list(range(n))
    assert seen != list(range(n))  # shuffled


def test_order_depends_only_on_seed_and_step():
    a = step_rows(100, 1, 13, 0, 8, 1)
    assert np.array_equal(a, step_rows(100, 1, 13, 0, 8, 1))
    assert not np.array_equal(a, step_rows(100, 2, 13, 0, 8, 1))
    # A batch that straddles an epoch boundary draws from the next epoch's permutation.
    straddle = step_rows(10, 0, 1, 0, 8, 1)
    assert len(straddle) == 8 and len(set(straddle[:2])) == 2


def test_shorter_seq_len_cuts_rows_into_windows(tmp_path):
    tokens = np.arange(2 * 8, dtype=np.uint32).reshape(2, 8)
    segments = np.zeros((2, 8), dtype=np.int32)
    write_split(str(tmp_path / "train"), tokens, segments)
    split = load_split(str(tmp_path), "train", seq_len=4)
    assert split.tokens.shape == (4, 4) and split.tokens[1].tolist() == [4, 5, 6, 7]
    with pytest.raises(InputError, match="must divide"):
        load_split(str(tmp_path), "train", seq_len=3)


def test_wrong_dtypes_or_shapes_name_the_input(tmp_path):
    write_split(str(tmp_path / "train"), np.zeros((2, 8), dtype=np.int64), np.zeros((2, 8), dtype=np.int32))
    with pytest.raises(InputError, match="expected uint32 tokens"):
        load_split(str(tmp_path), "train")
    write_split(str(tmp_path / "val"), np.zeros((2, 8), dtype=np.uint32), np.zeros((2, 7), dtype=np.int32))
    with pytest.raises(InputError, match="same"):
        load_split(str(tmp_path), "val")
    with pytest.raises(InputError, match="cannot read"):
        load_split(str(tmp_path), "missing")
