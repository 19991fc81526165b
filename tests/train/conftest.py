"""Fixtures for the train tests: a pack-format folder built from real Python sources."""

from __future__ import annotations

import pytest

from tests.conftest import python_sources
from tests.train.packed_corpus import write_pack

SEQ_LEN = 128


def _texts(skip: int, limit: int) -> list[str]:
    files = python_sources(limit=skip + limit)[skip:]
    return [open(f, encoding="utf-8", errors="replace").read()[:3000] for f in files]


@pytest.fixture(scope="session")
def tiny_pack(tiny_model_dir, tmp_path_factory) -> str:
    """Pack's layout with the shared tiny model's tokenizer (so that model can be a base model)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = str(tmp_path_factory.mktemp("pack"))
    return write_pack(path, tok, _texts(0, 24), _texts(24, 6), SEQ_LEN)


def fast_options(**extra) -> dict:
    """The tiny preset made quick for tests: short sequences, a few steps."""
    return {
        "max_steps": 6,
        "batch_size": 4,
        "eval_batches": 2,
        "eval_every": 3,
        "log_every": 2,
        "checkpoint_every": 2,
        "warmup_steps": 2,
        "num_threads": 1,
        **extra,
    }
