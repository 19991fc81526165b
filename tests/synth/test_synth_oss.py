"""oss-instruct end to end against the scripted teacher: only right, clean, unique samples are
kept, every other answer is quarantined with its reason, and a rerun sends no request."""

from __future__ import annotations

import json

from codemill import io
from codemill.cli import main
from tests.synth.conftest import EXPECTED, RIGHT, SCENARIO, oss_respond, write_corpus
from tests.synth.scripted import ScriptedTeacher, answer

# 2 s is far more than a scripted answer takes even on a loaded machine; "hanging" waits 5 s
FAST = [
    "--concurrency",
    "4",
    "--request-timeout-s",
    "2",
    "--max-retries",
    "1",
    "--backoff-s",
    "0.05",
    "--exec-timeout-s",
    "2",
    "--workers",
    "2",
    "--no-tracking",
]


def _run(corpus: str, out: str, url: str) -> int:
    return main(
        [
            "synth",
            "--mode",
            "oss-instruct",
            "--input",
            corpus,
            "--output",
            out,
            "--teacher-url",
            url,
            "--teacher-model",
            "scripted",
            "--max-samples",
            str(len(EXPECTED)),
            *FAST,
        ]
    )


def _scenario(text: str) -> str:
    return SCENARIO.search(text).group(1)


def test_oss_instruct_keeps_only_verified_clean_unique_samples_and_reruns_from_cache(oss_corpus, tmp_path):
    out = str(tmp_path / "out")
    with ScriptedTeacher(oss_respond) as teacher:
        assert _run(oss_corpus, out, teacher.url) == 0
        first_posts = teacher.posts
        stats = io.read_json(f"{out}/stats.json")
        data = io.read_parquet(f"{out}/data/shard-00000-of-00001.parquet").to_pylist()
        quarantine = io.read_parquet(f"{out}/quarantine/shard-00000-of-00001.parquet").to_pylist()

        # every scenario was asked once (the javascript file is outside the python quota)
        seen = sorted(_scenario(r["seed"]) for r in data) + sorted(_scenario(q["prompt"]) for q in quarantine)
        assert sorted(seen) == sorted(EXPECTED)
        kept = {_scenario(r["seed"]) for r in data}
        family = kept & {"right_a", "dup_exact", "dup_near"}
        assert len(family) == 1 and kept - family == {"right_b", "rate_limited", "flaky_503"}
        reasons = {_scenario(q["prompt"]): q["reason"] for q in quarantine}
        for name, reason in reasons.items():
            assert reason == ("duplicate" if EXPECTED[name] == "family_a" else EXPECTED[name]), name
        dup_details = [q["detail"] for q in quarantine if q["reason"] == "duplicate"]
        assert len(dup_details) == 2 and all(d.startswith(("same text as", "near-duplicate of")) for d in dup_details)
        assert "HumanEval/0" in next(q["detail"] for q in quarantine if q["reason"] == "contaminated")

        assert stats["requested"] == stats["answered"] == len(EXPECTED)
        assert stats["answered"] == stats["kept"] + stats["quarantined"] and stats["invariant_ok"]
        assert stats["kept"] == 4 and sum(stats["by_reason"].values()) == stats["quarantined"] == 8
        # one retry each: the 429, the 503 and the request that always times out
        assert stats["retries"] == 3 and stats["http_requests"] == first_posts == len(EXPECTED) + 3
        assert stats["tokens"]["prompt"] > 0 and stats["tokens"]["completion"] > 0
        assert stats["teacher_errors"] == {"timeout": 1}
        assert stats["seeds"]["languages"] == {"python": {"quota": 12, "files": 12, "drawn": 12}}

        row = data[0]
        assert row["teacher_model"] == "scripted" and row["source"] == "oss-instruct"
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["seed"] in row["messages"][0]["content"] and "[Tests]" in row["messages"][1]["content"]
        assert row["tests"].startswith("assert") and row["origin"].startswith("org/repo/")
        first_bytes = io.read_bytes(f"{out}/data/shard-00000-of-00001.parquet")

        # a rerun: every outcome (the teacher error included) comes from the cache
        assert _run(oss_corpus, out, teacher.url) == 0
        assert teacher.posts == first_posts
    again = io.read_json(f"{out}/stats.json")
    assert again["http_requests"] == 0 and again["cache_hits"] == len(EXPECTED)
    assert again["by_reason"] == stats["by_reason"] and again["tokens"] == stats["tokens"]
    assert again["teacher_errors"] == stats["teacher_errors"]
    assert io.read_bytes(f"{out}/data/shard-00000-of-00001.parquet") == first_bytes
    report = io.read_text(f"{out}/report.md")
    assert "## Kept examples" in report and "`failed_tests`" in report


def test_output_loads_with_datasets(tmp_path):
    import datasets

    # one file drawn twice: two snippets of it, the same answer twice -> one kept, one duplicate
    corpus = write_corpus(tmp_path / "corpus", [("b.py", "python", "\n".join(["x = 1  # SCENARIO:right_b"] * 30))])
    out = str(tmp_path / "out")
    with ScriptedTeacher(oss_respond) as teacher:
        assert (
            main(
                [
                    "synth",
                    "--input",
                    corpus,
                    "--output",
                    out,
                    "--teacher-url",
                    teacher.url + "/v1",
                    "--max-samples",
                    "2",
                    *FAST,
                ]
            )
            == 0
        )
    assert io.read_json(f"{out}/stats.json")["by_reason"] == {"duplicate": 1}
    ds = datasets.load_dataset("parquet", data_files=f"{out}/data/*.parquet", split="train")
    assert len(ds) == 1
    assert set(ds.column_names) >= {"messages", "task_id", "source", "seed", "tests", "teacher_model"}
    assert ds[0]["messages"][1] == {"role": "assistant", "content": answer(*RIGHT["right_b"])}
    q = datasets.load_dataset("parquet", data_files=f"{out}/quarantine/*.parquet", split="train")
    assert q["reason"] == ["duplicate"] and q["raw"] == [answer(*RIGHT["right_b"])]
    # ...and SFT reads it as chat examples
    from codemill.sft import data as sft_data

    loaded = sft_data.load(out, eval_fraction=0.0, seed=0)
    assert [e.messages[-1]["content"] for e in loaded.train] == [answer(*RIGHT["right_b"])] and not loaded.quarantine


def test_without_a_teacher_the_step_is_skipped_with_the_reason(oss_corpus, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["synth", "--input", oss_corpus, "--output", out, "--no-tracking"]) == 0
    stats = io.read_json(f"{out}/stats.json")
    assert stats["skipped"] is True and "--teacher-url" in stats["reason"] and stats["requested"] == 0
    assert "Skipped" in io.read_text(f"{out}/report.md")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] is True


def test_an_s3_output_holds_the_cache_and_the_contract(tmp_path, s3_endpoint):
    io.s3_client().create_bucket(Bucket="synth")
    corpus = write_corpus(tmp_path / "corpus", [("b.py", "python", "\n".join(["x = 1  # SCENARIO:right_b"] * 30))])
    out = "s3://synth/run"
    with ScriptedTeacher(oss_respond) as teacher:
        args = ["synth", "--input", corpus, "--output", out, "--teacher-url", teacher.url, "--max-samples", "2", *FAST]
        assert main(args) == 0
        posts = teacher.posts
        assert len(io.list_files(f"{out}/_cache/teacher", ".json")) == 2
        assert main(args) == 0 and teacher.posts == posts
    stats = io.read_json(f"{out}/stats.json")
    assert stats["cache_hits"] == 2 and stats["by_reason"] == {"duplicate": 1} and io.exists(f"{out}/report.md")
    assert len(io.read_parquet(f"{out}/data/shard-00000-of-00001.parquet")) == 1
