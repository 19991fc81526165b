"""The prompt pool: which tasks a step draws, and no-positive-resampling (ScaleRL).

A task whose pass rate over its last ``window`` groups reaches ``threshold`` has nothing
left to teach (its groups are all-pass, zero-variance) and leaves the pool for good. Each
step draws ``k`` tasks from the active pool without replacement, cycling through a seeded
permutation so every task is seen once per epoch; the draw is a function of (seed, step,
retired set), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass
class TaskPool:
    task_ids: list[str]
    threshold: float = 0.9
    window: int = 2
    seed: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    retired: dict[str, int] = field(default_factory=dict)  # task id -> step it left the pool
    cursor: int = 0  # draws made so far (position in the epoch sequence)

    def active(self) -> list[str]:
        return [t for t in self.task_ids if t not in self.retired]

    def draw(self, k: int) -> list[str]:
        """``k`` distinct active tasks (fewer only when fewer are active)."""
        active = self.active()
        if not active:
            return []
        chosen: list[str] = []
        while len(chosen) < min(k, len(active)):
            epoch, pos = divmod(self.cursor, len(self.task_ids))
            order = sorted(self.task_ids)
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
            candidate = order[pos]
            self.cursor += 1
            if candidate not in self.retired and candidate not in chosen:
                chosen.append(candidate)
        return chosen

    def record(self, task_id: str, pass_rate: float, step: int) -> bool:
        """Note one group's pass rate; True when the task leaves the pool now."""
        recent = deque(self.history.get(task_id, []), maxlen=self.window)
        recent.append(float(pass_rate))
        self.history[task_id] = list(recent)
        if task_id not in self.retired and len(recent) == self.window and sum(recent) / len(recent) >= self.threshold:
            self.retired[task_id] = step
            return True
        return False

    def state(self) -> dict:
        return {"history": self.history, "retired": self.retired, "cursor": self.cursor}

    def load(self, state: dict) -> None:
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.retired = dict(state["retired"])
        self.cursor = int(state["cursor"])


def difficulty_keep(pass_rates: dict[str, float], low: float, high: float) -> tuple[list[str], dict[str, int]]:
    """open-r1's offline difficulty filter: tasks whose pass rate lies in [low, high]."""
    kept = sorted(t for t, r in pass_rates.items() if low <= r <= high)
    dropped = {
        "too_hard": sum(r < low for r in pass_rates.values()),
        "too_easy": sum(r > high for r in pass_rates.values()),
    }
    return kept, dropped
