"""pack: dedup's files -> tokenizer + packed token sequences for train and evaluate.

Design (DeepSeek-Coder §2.2/§3.1, Bavarian et al. 2022):

1. ``documents``: a repository's files of one language family, in dependency order
   (``imports`` parses, ``resolve`` maps names to files, ``order`` sorts), each file
   under a comment line with its path; other files are documents of their own.
2. ``tokenizer``: byte-level BPE trained on the training split (or a base model's,
   copied with the sentinels added); code is encoded with special-token parsing off.
3. ``packer``: documents fill fixed-length rows; a document that does not fit is cut to
   fill the row exactly, and FIM (PSM/SPM at character-level spans) is applied to each
   piece after the cut, so every FIM example lies whole in one row.
4. ``steps``/``shard``/``finish``: tokenizer step, one shard per rank (encoding the next
   batch while packing this one), and the merge into the contract of
   docs/architecture.md; ``unpack`` decodes the result (``codemill inspect``).
"""

from __future__ import annotations

from codemill.pack.config import PackConfig
from codemill.pack.finish import finish
from codemill.pack.shard import pack_shard
from codemill.pack.steps import train_tokenizer
from codemill.pack.unpack import iter_units
from codemill.stage import InputError
from codemill.tracking import Tracker

STEPS = ("all", "tokenizer", "shard", "finish")

__all__ = ["PackConfig", "finish", "iter_units", "pack_shard", "run", "train_tokenizer", "STEPS"]


def run(
    config: PackConfig,
    input: str,
    output: str,
    rank: int = 0,
    world_size: int = 1,
    tracker: Tracker | None = None,
    step: str = "all",
) -> dict:
    """One step, or (``all``) every step this rank can do: the tokenizer when it is not
    there yet, this rank's shard, and finish once every shard is done. Concurrent
    shards should run ``tokenizer`` once first, then ``shard`` each, then ``finish``."""
    from codemill import stage

    if step not in STEPS:
        raise InputError(f"pack: unknown step {step!r} (one of {', '.join(STEPS)})")
    result: dict = {}
    if step in ("all", "tokenizer"):
        result = train_tokenizer(config, input, output, tracker)
    if step in ("all", "shard"):
        result = pack_shard(config, input, output, rank, world_size, tracker)
    if step == "finish" or (
        step == "all" and all(stage.shard_done(output, "pack", r, world_size) for r in range(world_size))
    ):
        result = finish(output, world_size, tracker)
    return result
