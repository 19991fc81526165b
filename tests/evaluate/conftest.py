"""Fixtures of the evaluate tests: samples files, a recording tracker, a small pack output."""

import json
import os

import numpy as np
import pyarrow as pa
import pytest

from codemill import io
from tests.conftest import python_sources


class RecordingTracker:
    """Keeps what a stage logs, to check names and artifacts."""

    def __init__(self):
        self.params, self.metrics, self.artifacts = {}, {}, []

    def log_params(self, params):
        self.params.update(params)

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)

    def log_artifact(self, local_path, artifact_path=None):
        assert os.path.exists(local_path)
        self.artifacts.append(os.path.basename(local_path))

    def log_artifacts(self, local_dir, artifact_path=None):
        self.artifacts.extend(sorted(os.listdir(local_dir)))

    def set_tags(self, tags):
        pass


@pytest.fixture()
def tracker():
    return RecordingTracker()


@pytest.fixture(scope="session")
def problems():
    from codemill.evaluate.humaneval import load_problems

    return load_problems()


def write_samples(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory, tiny_model_dir):
    """pack's output layout: held-out documents (stdlib files) and val token shards, made
    with the tiny model's tokenizer (BOS + document + EOS, packed into 128-token rows)."""
    from transformers import AutoTokenizer

    root = str(tmp_path_factory.mktemp("pack"))
    files = python_sources(12)
    texts = [open(f, encoding="utf-8").read() for f in files]
    table = pa.table(
        {"repo": [f"heldout/{os.path.basename(f)}" for f in files], "language": ["Python"] * len(files), "text": texts}
    )
    io.write_parquet(table, io.join(root, "heldout", "documents.parquet"))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    stream, segments = [], []
    for doc, text in enumerate(texts[:4]):
        ids = [tok.bos_token_id] + tok(text[:1500], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        stream += ids
        segments += [doc] * len(ids)
    rows = len(stream) // 128
    tokens = np.array(stream[: rows * 128], dtype=np.uint32).reshape(rows, 128)
    segs = np.array(segments[: rows * 128], dtype=np.int32).reshape(rows, 128)
    segs = segs - segs[:, :1]  # segment ids restart at 0 in every row
    os.makedirs(os.path.join(root, "val"))
    np.save(os.path.join(root, "val", "tokens.npy"), tokens)
    np.save(os.path.join(root, "val", "segments.npy"), segs)
    return root
