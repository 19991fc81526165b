"""What every stage shares: config dataclasses as CLI flags, shard names and
completion markers, stats.json, and logging the resolved config at start.

A stage config is a plain dataclass; each field carries its help text in
``field(metadata={"help": ...})`` so the CLI and the docs come from one place::

    @dataclass
    class DedupConfig:
        threshold: float = field(default=0.7, metadata={"help": "Jaccard threshold"})
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from codemill import io

if TYPE_CHECKING:
    from codemill.tracking import Tracker

C = TypeVar("C")


class InputError(ValueError):
    """A whole input or configuration is unusable; the message names it and what is wrong.

    The CLI prints it as one line (no traceback) and exits with status 2.
    """


class PrerequisiteError(InputError, RuntimeError):
    """A step ran before the steps it needs (a shard never finished, a phase's input is
    missing). An :class:`InputError` for the CLI (one line, exit 2), and a
    ``RuntimeError`` for callers that treat an unfinished run as a runtime state."""


# ---------------------------------------------------------------------------- configs


def _field_type(cls, f: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    t = hints[f.name]
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        t = args[0]
    return t


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--flag`` per dataclass field (``max_repos`` -> ``--max-repos``)."""
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        t = _field_type(cls, f)
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if t is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(t) in (list, tuple):
            kwargs["nargs"] = "*"
            kwargs["type"] = typing.get_args(t)[0] if typing.get_args(t) else str
        else:
            kwargs["type"] = t
            kwargs["metavar"] = f.metadata.get("metavar", t.__name__.upper())
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, help=f"{help_text} (default: {default!r})", **kwargs)


def config_from_args(cls: type[C], args: argparse.Namespace, **extra: Any) -> C:
    """Build a config from parsed flags; flags not given keep the dataclass defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update({k: v for k, v in extra.items() if k in names})
    return cls(**values)


def config_from_options(cls: type[C], options: dict | None, stage: str = "", **overrides: Any) -> C:
    """A config from a pipeline's ``<stage>_options`` dict (plus explicit overrides).

    KFP passes dict parameters through protobuf ``Struct``, where every number is a
    float (``{"max_repos": 40}`` arrives as ``40.0``): values are coerced back to each
    field's type, and unknown keys fail naming the known ones.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {**(options or {}), **overrides}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise InputError(f"{stage or cls.__name__} options: unknown setting(s) {unknown}; known: {sorted(fields)}")
    return cls(**coerce_fields(cls, values, stage))


def coerce_fields(cls: type, values: dict[str, Any], stage: str = "") -> dict[str, Any]:
    """``values`` as the types ``cls`` declares (whole floats back to ints, ints to floats)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return {k: _coerce(stage or cls.__name__, k, v, _field_type(cls, fields[k])) for k, v in values.items()}


def _coerce(stage: str, name: str, value: Any, kind: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        item = (typing.get_args(kind) or (str,))[0]
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{stage} options: {name}={value!r} is not a list")
        return [_coerce(stage, name, v, item) for v in value]
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise InputError(f"{stage} options: {name}={value!r} is not a mapping")
        return value
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{stage} options: {name} must be an integer, got {value}")
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise InputError(f"{stage} options: {name}={value!r} is not a {kind.__name__}")
    return value


def preset_names(folder: str) -> list[str]:
    """The presets shipped in ``folder`` (``<name>.yaml``), sorted."""
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))


def read_preset(folder: str, name: str, what: str = "preset") -> dict[str, Any]:
    """The YAML mapping of preset ``name`` in ``folder``; an unknown name fails listing the
    known ones (``what`` names it in the message: "preset", "sft preset")."""
    import yaml

    path = os.path.join(folder, f"{name}.yaml")
    if not name or not os.path.isfile(path):
        raise InputError(f"unknown {what} {name!r}; known presets: {', '.join(preset_names(folder))}")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def fill_from_preset(config: Any, preset: dict[str, Any], label: str, may_stay_none: tuple[str, ...] = ()) -> Any:
    """A copy of ``config`` (a dataclass with a ``preset`` field) whose None fields come from
    ``preset``, coerced to the declared types (KFP hands numbers over as floats); fails naming
    the fields that are still None. Train and sft presets both resolve through this."""
    cls = type(config)
    values = dataclasses.asdict(config)
    for key, value in preset.items():
        if values.get(key) is None:
            values[key] = value
    values = coerce_fields(cls, values, f"{label} config")
    missing = sorted(k for k, v in values.items() if v is None and k not in may_stay_none)
    if missing:
        raise InputError(f"{label} preset {config.preset}: no value for {missing}; set them in the preset or as flags")
    return cls(**values)


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def log_config(stage: str, config: Any, tracker: Tracker | None = None) -> None:
    """Print the resolved config (and log it as MLflow params when tracking)."""
    values = config_dict(config)
    print(f"[{stage}] config: {json.dumps(values, sort_keys=True, default=str)}", flush=True)
    if tracker is not None:
        tracker.log_params(values)


# ---------------------------------------------------------------------------- shards


def check_shard(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"invalid shard: rank={rank} world_size={world_size} (need 0 <= rank < world_size)")


def shard_name(rank: int, world_size: int) -> str:
    return f"shard-{rank:05d}-of-{world_size:05d}"


def marker_url(output: str, stage: str, rank: int, world_size: int) -> str:
    """The completion marker a shard writes last; a retry skips shards that have one."""
    return io.join(output, "_markers", f"{stage}.{shard_name(rank, world_size)}.done")


def read_marker(output: str, stage: str, rank: int, world_size: int) -> dict | None:
    """A shard's marker, or None when it has none. An empty or half-written marker (a kill
    between create and write, from before markers were written atomically) counts as
    none, so the shard is simply done again instead of failing for good."""
    url = marker_url(output, stage, rank, world_size)
    if not io.exists(url):
        return None
    try:
        done = json.loads(io.read_bytes(url).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        print(f"[{stage}] {url}: unreadable completion marker; redoing the shard", file=sys.stderr, flush=True)
        return None
    return done if isinstance(done, dict) else None


def shard_done(output: str, stage: str, rank: int, world_size: int) -> bool:
    return read_marker(output, stage, rank, world_size) is not None


def mark_shard_done(output: str, stage: str, rank: int, world_size: int, stats: dict) -> None:
    data = (json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    io.write_atomic(marker_url(output, stage, rank, world_size), data)


def read_shard_stats(output: str, stage: str, world_size: int) -> list[dict]:
    """Stats of every shard of a stage; fails naming the shards that never finished."""
    done = [read_marker(output, stage, r, world_size) for r in range(world_size)]
    missing = [r for r, d in enumerate(done) if d is None]
    if missing:
        raise PrerequisiteError(f"{output}: {stage} shards {missing} of {world_size} have not finished; run them first")
    return done


# ---------------------------------------------------------------------------- stats


def write_stats(output: str, stats: dict) -> str:
    url = io.join(output, "stats.json")
    io.write_json(url, stats)
    return url


def read_stats(output: str) -> dict:
    return io.read_json(io.join(output, "stats.json"))


def numeric_metrics(stats: dict, prefix: str = "") -> dict[str, float]:
    """Flatten stats to the scalar metrics MLflow and KFP Metrics accept."""
    out: dict[str, float] = {}
    for k, v in stats.items():
        key = f"{prefix}{k}"
        if isinstance(v, (bool, int, float)):
            out[key] = float(v)
        elif isinstance(v, dict):
            out.update(numeric_metrics(v, prefix=f"{key}."))
    return out


class SigtermFlag:
    """Turns SIGTERM into a flag a training loop checks between steps, so it can write a
    checkpoint and stop cleanly (main thread only; elsewhere no handler and no flag)."""

    def __init__(self):
        self.raised, self._previous = False, None

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# ---------------------------------------------------------------------------- KFP outputs


def publish_kfp(output: str, stats: dict, metrics=None, report=None, report_name: str = "report.md") -> None:
    """Surface a stage's stats and report in the KFP UI.

    ``metrics`` is an ``Output[Metrics]`` (scalars only) and ``report`` an
    ``Output[Markdown]``/``Output[HTML]``; both are duck-typed so this module does not
    import kfp. NaN and infinite values are left out of ``metrics`` (KFP fails the whole
    component on one, kubeflow/pipelines#12227); they stay in stats.json and the report.
    """
    import math

    if metrics is not None:
        values = numeric_metrics(stats)
        skipped = sorted(k for k, v in values.items() if not math.isfinite(v))
        if skipped:
            print(f"not logged to KFP metrics (not finite; kept in stats.json): {', '.join(skipped)}")
        for k, v in sorted(values.items()):
            if math.isfinite(v):
                metrics.log_metric(k, v)
    if report is not None:
        src = io.join(output, report_name)
        text = io.read_text(src) if io.exists(src) else f"(no {report_name} in {output})"
        with open(report.path, "w", encoding="utf-8") as f:
            f.write(text)
