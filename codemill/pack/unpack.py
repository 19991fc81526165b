"""Decode a pack output back to what the model is fed: ``codemill inspect DIR``.

Each unit (one segment of a packed sequence, one row of ``documents.parquet``) comes
back as its repository, language, format (plain/psm/spm), the decoded tokens with
BOS/EOS and sentinels spelled out (``text``), and the source text it was made from
(``original``: a FIM example with its prefix, middle and suffix put back in order).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from codemill import io
from codemill.pack.fim import PLAIN, split_fim_ids
from codemill.stage import InputError


@contextmanager
def _local_split(directory: str, split: str):
    """(local pack folder, with meta.json, tokenizer/ and the split's files)."""
    with io.local_files(directory, ("meta.json", f"{split}/tokens.npy", f"{split}/documents.parquet")) as local:
        if io.is_s3(directory):
            io.download_dir(io.join(directory, "tokenizer"), os.path.join(local, "tokenizer"))
        yield local


def decode_unit(ids: list[int], fmt: str, meta: dict, decode) -> dict:
    """``text`` (what the model is fed, specials spelled out) and ``original`` of one unit."""
    return {"text": decode(ids), "original": original_text(ids, fmt, meta, decode)}


def original_text(ids: list[int], fmt: str, meta: dict, decode) -> str:
    """The source text a unit was made from (FIM parts put back in prefix-middle-suffix order)."""
    body = ids[1:] if ids[:1] == [meta["bos"]] else ids
    if body[-1:] == [meta["eos"]]:
        body = body[:-1]
    if fmt == PLAIN:
        return decode(body)
    prefix, middle, suffix = split_fim_ids(body, fmt, meta["fim_begin"], meta["fim_hole"], meta["fim_end"])
    return decode(prefix + middle + suffix)


def iter_units(
    directory: str, split: str = "train", limit: int | None = None, formats: tuple[str, ...] | None = None
) -> Iterator[dict]:
    """The units of one split in packing order (optionally only some formats)."""
    from tokenizers import Tokenizer

    with _local_split(directory, split) as local:
        meta_path = os.path.join(local, "meta.json")
        if not os.path.exists(meta_path):
            raise InputError(f"{directory}: no meta.json (not a finished pack output)")
        meta = io.read_json(meta_path)
        tok = Tokenizer.from_file(os.path.join(local, "tokenizer", "tokenizer.json"))

        def decode(ids) -> str:
            return tok.decode([int(i) for i in ids], skip_special_tokens=False)

        tokens = np.load(os.path.join(local, split, "tokens.npy"), mmap_mode="r")
        table = io.read_parquet(os.path.join(local, split, "documents.parquet")).to_pylist()
        shown = 0
        for row in table:
            if formats and row["format"] not in formats:
                continue
            if limit is not None and shown >= limit:
                return
            ids = tokens[row["sequence"], row["start"] : row["start"] + row["length"]].tolist()
            yield {**row, **decode_unit(ids, row["format"], meta, decode)}
            shown += 1
