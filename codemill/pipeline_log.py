"""What a person sees of a local pipeline run: one line per task, every task's full log in a file.

kfp.local prints each task's executor JSON, a RuntimeWarning about the non-Python image
and everything the step prints (resolved configs, tqdm) to this process's stdout: about
800 lines for ``make run``. While ``task_log`` is active, each task thread's stdout and
stderr go to ``<log_dir>/NN-<task>.log`` (kfp.local runs ParallelFor iterations in
threads and relays a step's output by ``print`` in the thread that runs it), anything
else to ``<log_dir>/pipeline.log``, and the terminal gets::

    validate-shard        SUCCESS     3.1 s
    validate-finish       SUCCESS     1.4 s  kept=38 quarantined=2
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator

# Which of a task's KFP metrics make its one line, by the stage its name starts with.
KEY_FIGURES = {
    "validate": ("kept", "quarantined"),
    "dedup": ("kept_files", "removed_exact_files", "removed_near_files"),
    "pack": ("sequences", "tokens", "packing_efficiency"),
    "train": ("steps", "val_loss_start", "val_loss_end"),
    "eval": ("*greedy.pass_at_1", "heldout.perplexity"),
    "serve": ("gate_passed", "rolled_out"),
    "tasks": ("tasks", "quarantined"),
    "synth": ("skipped", "kept", "quarantined"),
    "sft": ("skipped", "steps", "train_loss_start", "train_loss_end"),
    "rl": ("steps", "pass_rate_first", "pass_rate_last"),
    "r1": ("skipped", "kept", "*.humaneval.pass_at_1"),  # r1-synth, r1-compare
}
# Tasks without metrics whose string output is the figure worth a line.
OUTPUT_FIGURES = {"start-run": "run_dir", "finish-run": "Output"}


class _ThreadRouter:
    """Stands in for sys.stdout and sys.stderr: writes go to the calling thread's file."""

    def __init__(self, default):
        self.default = default
        self.local = threading.local()

    def _target(self):
        # a thread still logging after its task's log file closed (or after the run, when the
        # stream it was given is gone) writes to the process's own stderr instead of raising
        for stream in (getattr(self.local, "file", None), self.default, sys.__stderr__):
            if stream is not None and not getattr(stream, "closed", False):
                return stream
        return sys.__stderr__

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False


def key_figure(task: str, outputs: dict) -> str:
    """The short figure for a task's line, from its Metrics output (or its run folder / status)."""
    if task in OUTPUT_FIGURES:
        return str(outputs.get(OUTPUT_FIGURES[task], ""))
    metrics = next(
        (getattr(v, "metadata", {}) for v in outputs.values() if getattr(v, "schema_title", "") == "system.Metrics"), {}
    )
    patterns = KEY_FIGURES.get(task.split("-")[0], ())
    shown = [(k, metrics[k]) for p in patterns for k in sorted(metrics) if fnmatch.fnmatchcase(k, p)]
    return " ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in shown)


@contextlib.contextmanager
def task_log(log_dir: str, terminal=None) -> Iterator[list[dict]]:
    """Route kfp.local's output into per-task files and print one line per task to ``terminal``.

    Yields the list of finished tasks (name, status, seconds, figure, log), filled as they end.
    """
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    os.makedirs(log_dir, exist_ok=True)
    terminal = terminal or sys.stdout
    tasks: list[dict] = []
    counter, lock = itertools.count(1), threading.Lock()
    original = OrchestratorUtils.__dict__["execute_single_task"]
    run_task = original.__get__(None, OrchestratorUtils)

    def execute_single_task(task_name, *args, **kwargs):
        with lock:
            path = os.path.join(log_dir, f"{next(counter):02d}-{task_name}.log")
        start = time.monotonic()
        with open(path, "w", encoding="utf-8") as f:
            router.local.file = f
            try:
                outputs, status = run_task(task_name, *args, **kwargs)
            finally:
                router.local.file = None
        entry = {
            "task": task_name,
            "status": status.name,
            "seconds": round(time.monotonic() - start, 1),
            "figure": key_figure(task_name, outputs or {}),
            "log": path,
        }
        with lock:
            tasks.append(entry)
            line = f"  {task_name:24s} {entry['status']:8s} {entry['seconds']:7.1f} s  {entry['figure']}".rstrip()
            terminal.write(line + (f"\n    log: {path}" if entry["status"] != "SUCCESS" else "") + "\n")
            terminal.flush()
        return outputs, status

    with open(os.path.join(log_dir, "pipeline.log"), "w", encoding="utf-8") as main_log:
        router = _ThreadRouter(main_log)
        saved = sys.stdout, sys.stderr, warnings.showwarning
        sys.stdout = sys.stderr = router
        # kfp.local's RuntimeWarning about the image, once per task: into that task's log.
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: router.write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        OrchestratorUtils.execute_single_task = staticmethod(execute_single_task)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", RuntimeWarning)
                yield tasks
        finally:
            OrchestratorUtils.execute_single_task = original
            sys.stdout, sys.stderr, warnings.showwarning = saved
