"""One step runner for every stage: the CLI and every KFP component call :func:`run`.

A step is described once, in :data:`codemill.steps.STEPS` (name, stage, config class,
function, per shard or once, inputs, what it writes). :func:`run` is the one preamble and
epilogue around a step's function:

1. check the shard (``0 <= rank < world_size``) and the config (``config.ensure_valid()``);
2. for a step with a completion marker: reuse a finished shard made with the same config
   (printing ``already done; skipping``), refuse one made with another config with an
   error naming the fields that differ (``docs/architecture.md``: "Retries");
3. log the resolved config (stdout and MLflow params), time the step, call
   ``fn(config, ctx)``;
4. log the step's seconds; for a marker step add the config to the stats and write them
   as the marker, atomically (so a skipped retry returns the same dict); return the stats.

MLflow run names come from :func:`run_name`, so a step has the same name from the CLI
and from KFP (``pack-shard-1``, ``evaluate-generate``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codemill import stage, tracking
from codemill.stage import InputError
from codemill.tracking import NoOpTracker, Tracker


@dataclass(frozen=True)
class Step:
    """One step of the pipeline, described once.

    ``config`` and ``fn`` are ``module:attribute`` paths, imported on first use, so the
    step table can be read (``codemill --help``, docs) without importing torch.
    """

    name: str
    stage: str
    config: str | None
    fn: str
    sharded: bool = False
    marker: str | None = None  # the completion marker's name; None: the step writes none
    inputs: tuple[str, ...] = ()  # required inputs (URLs); a step may read optional ones from ctx.inputs
    writes: str = ""
    doc: str = ""
    # False for a step that logs the config it resolves itself (train fills in its preset and
    # picks the attention backend for the device; MLflow refuses a param logged twice with two values)
    log_config: bool = True

    def config_class(self) -> type:
        if not self.config:
            raise InputError(f"{self.name}: this step takes no settings")
        return _resolve(self.config)

    def function(self) -> Callable[..., Any]:
        return _resolve(self.fn)

    def run_name(self, rank: int = 0, world_size: int = 1) -> str:
        """The MLflow run name: the step name, plus the rank for a step that runs per shard."""
        return f"{self.name}-{rank}" if self.sharded and world_size > 1 else self.name


@dataclass
class Context:
    """What a step's function gets besides its config."""

    step: Step
    output: str
    rank: int = 0
    world_size: int = 1
    tracker: Tracker = field(default_factory=NoOpTracker)
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def shard(self) -> str:
        return stage.shard_name(*_marker_shard(self.step, self.rank, self.world_size))

    def input(self, name: str) -> Any:
        """A required input; a missing one is a one-line error naming its flag."""
        value = self.inputs.get(name)
        if value is None or value == "":
            raise InputError(f"{self.step.name}: needs --{name.replace('_', '-')}")
        return value


def _resolve(path: str):
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str) -> Step:
    from codemill.steps import STEPS

    if name not in STEPS:
        raise InputError(f"unknown step {name!r}; known: {', '.join(sorted(STEPS))}")
    return STEPS[name]


def check_config(config: Any) -> Any:
    """The one self-check name: ``config.ensure_valid()`` raises :class:`InputError` naming the field."""
    ensure_valid = getattr(config, "ensure_valid", None)
    if callable(ensure_valid):
        ensure_valid()
    return config


# ---------------------------------------------------------------------------- the preamble


def run(
    name: str,
    config: Any,
    *,
    output: str,
    rank: int = 0,
    world_size: int = 1,
    tracker: Tracker | None = None,
    **inputs: Any,
) -> dict:
    """Run step ``name`` for one shard (or once); returns its stats."""
    step = get(name)
    tracker = tracker or NoOpTracker()
    stage.check_shard(rank, world_size)
    check_config(config)
    ctx = Context(step, output, rank, world_size, tracker, {k: v for k, v in inputs.items() if v is not None})
    for required in step.inputs:
        ctx.input(required)  # a missing input fails before any work
    if step.marker:
        done = stage.read_marker(output, step.marker, *_marker_shard(step, rank, world_size))
        if done is not None:
            refuse_other_config(ctx, done.get("config"), config)
            print(f"[{step.stage}] {step.marker} {ctx.shard} already done; skipping", flush=True)
            return done
    if config is not None and step.log_config:
        stage.log_config(step.name, config, tracker)
    with stage.Timer() as timer:
        result = step.function()(config, ctx)
    stats = as_stats(result)
    tracker.log_metrics({"step_seconds": timer.seconds})
    print(f"[{step.stage}] {step.run_name(rank, world_size)} done in {timer.seconds:.1f}s", flush=True)
    if step.marker:
        # the marker holds what the step returned, so a skipped retry returns the same dict
        stats.setdefault("config", stage.config_dict(config))
        stage.mark_shard_done(output, step.marker, *_marker_shard(step, rank, world_size), stats)
    return stats


def _marker_shard(step: Step, rank: int, world_size: int) -> tuple[int, int]:
    """A step that runs once has one marker (0 of 1), whatever the fan-out around it."""
    return (rank, world_size) if step.sharded else (0, 1)


def as_stats(result: Any) -> dict:
    """A step's stats as a dict: a stats dataclass becomes its fields."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return dict(result or {})


def refuse_other_config(ctx: Context, done: dict | None, config: Any) -> None:
    """A finished shard is reused only when it was made with the same settings."""
    if done is None:  # a marker without a config says nothing to compare
        return
    current = json.loads(json.dumps(stage.config_dict(config), default=str))  # as the marker stores it
    keys = sorted(set(done) | set(current))
    diff = [
        f"{k}: {done.get(k, '<unset>')!r} -> {current.get(k, '<unset>')!r}"
        for k in keys
        if done.get(k) != current.get(k) or (k in done) != (k in current)
    ]
    if diff:
        raise InputError(
            f"{ctx.output}: {ctx.step.marker} {ctx.shard} already finished with other settings "
            f"({'; '.join(diff)}); use a new --output, or delete it to start over"
        )


# ---------------------------------------------------------------------------- the faces


def run_tracked(
    name: str,
    config: Any,
    *,
    output: str,
    tracking_uri: str = "",
    parent_run_id: str = "",
    enabled: bool = True,
    rank: int = 0,
    world_size: int = 1,
    **inputs: Any,
) -> dict:
    """:func:`run` inside the step's MLflow run (nested under the pipeline's parent run)."""
    step = get(name)
    with tracking.stage_run(step.run_name(rank, world_size), tracking_uri, parent_run_id, enabled=enabled) as tracker:
        return run(name, config, output=output, rank=rank, world_size=world_size, tracker=tracker, **inputs)


def from_kfp(
    name: str,
    options: dict | None,
    *,
    output: str,
    tracking_uri: str = "",
    parent_run_id: str = "",
    rank: int = 0,
    world_size: int = 1,
    overrides: dict | None = None,
    **inputs: Any,
) -> dict:
    """What a KFP component body calls: the config from the pipeline's ``<stage>_options``
    dict (KFP floats coerced back to the declared types, unknown keys refused), then
    :func:`run_tracked`."""
    config = kfp_config(name, options, overrides)
    return run_tracked(
        name,
        config,
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        rank=rank,
        world_size=world_size,
        **inputs,
    )


def kfp_config(name: str, options: dict | None, overrides: dict | None = None) -> Any:
    """Step ``name``'s config from a pipeline's options dict plus the pipeline-wide values."""
    step = get(name)
    if not step.config:
        return None
    return stage.config_from_options(step.config_class(), options, step.stage, **(overrides or {}))


def from_args(name: str, config: Any, args: Any, **inputs: Any) -> dict:
    """What a CLI handler calls: :func:`run_tracked` with the shared tracking and shard flags."""
    return run_tracked(
        name,
        config,
        output=args.output,
        tracking_uri=getattr(args, "tracking_uri", ""),
        parent_run_id=getattr(args, "parent_run_id", ""),
        enabled=not getattr(args, "no_tracking", False),
        rank=getattr(args, "rank", 0),
        world_size=getattr(args, "world_size", 1),
        **inputs,
    )
