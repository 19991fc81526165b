"""No-positive-resampling, the seeded draw, and the difficulty filter."""

from __future__ import annotations

from codemill.rl.pool import TaskPool, difficulty_keep


def test_a_task_passed_over_its_window_leaves_the_pool():
    pool = TaskPool(["a", "b", "c"], threshold=0.9, window=2)
    assert not pool.record("a", 1.0, step=1)  # one group is not a window yet
    assert not pool.record("b", 1.0, step=1)
    assert not pool.record("b", 0.5, step=2)  # mean 0.75 < 0.9
    assert pool.record("a", 0.875, step=2)  # mean 0.9375
    assert pool.retired == {"a": 2} and pool.active() == ["b", "c"]
    assert all("a" not in pool.draw(2) for _ in range(10))


def test_draws_are_distinct_seeded_and_survive_a_state_round_trip():
    pool = TaskPool([f"t{i}" for i in range(7)], seed=3)
    first = [pool.draw(3) for _ in range(4)]
    assert all(len(set(d)) == 3 for d in first)
    again = TaskPool([f"t{i}" for i in range(7)], seed=3)
    again.draw(3)
    again.draw(3)
    copy = TaskPool([f"t{i}" for i in range(7)], seed=3)
    copy.load(again.state())
    assert [copy.draw(3), copy.draw(3)] == first[2:]
    empty = TaskPool(["x"], window=1)
    empty.record("x", 1.0, 1)
    assert empty.draw(2) == []


def test_difficulty_filter_keeps_the_middle():
    kept, dropped = difficulty_keep({"easy": 1.0, "hard": 0.0, "mid": 0.5, "edge": 0.1}, 0.1, 0.6)
    assert kept == ["edge", "mid"] and dropped == {"too_hard": 1, "too_easy": 1}
