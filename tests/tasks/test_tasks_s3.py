"""The tasks stage reads its input from and writes its output to S3 (moto's server over
HTTP), sharded, with the same tasks as a local run."""

import glob
import os

import pyarrow.parquet as pq
from tasks_corpus import write_corpus
from test_tasks_stage import mine, tasks

from codemill import io


def test_s3_input_and_output_give_the_same_tasks(s3_endpoint, tmp_path):
    local_in = write_corpus(str(tmp_path / "in"))
    io.s3_client().create_bucket(Bucket="corpus")
    url = "s3://corpus/validate/files/shard-00000-of-00001.parquet"
    io.write_bytes(url, open(glob.glob(os.path.join(local_in, "files", "*.parquet"))[0], "rb").read())
    remote = mine("s3://corpus/validate", "s3://corpus/tasks", world_size=2, kinds=["output"])
    local = mine(local_in, str(tmp_path / "out"), world_size=2, kinds=["output"])
    assert {k: remote[k] for k in ("candidates", "tasks", "by_reason")} == {
        k: local[k] for k in ("candidates", "tasks", "by_reason")
    }
    fetched = tmp_path / "fetched.parquet"
    fetched.write_bytes(io.read_bytes("s3://corpus/tasks/tasks/train.parquet"))
    assert pq.read_table(fetched).to_pylist() == [t for t in tasks(str(tmp_path / "out")) if t["split"] == "train"]
    assert io.exists("s3://corpus/tasks/stats.json") and io.exists("s3://corpus/tasks/report.md")
