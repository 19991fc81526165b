"""The dedup stage end to end on repositories built from installed packages: forks and
renamed copies removed whole, vendored files removed as exact copies, unrelated
repositories untouched, outputs deterministic and independent of the shard count."""

import os

import pyarrow.parquet as pq
import pytest
from dedup_corpus import drop_files, package_repo, read_kept, reindent, rename_identifier, write_input

from codemill import io, stage
from codemill.dedup import DedupConfig, cluster, finish, run, signature_shard, write_shard
from codemill.records import FILE_SCHEMA


def corpus() -> dict:
    click, jinja, attr, markup = (package_repo(p, max_files=12) for p in ("click", "jinja2", "attr", "markupsafe"))
    app = dict(markup)  # an unrelated project that vendors three files of attr
    for path in sorted(attr)[:3]:
        app[f"vendor/{path}"] = attr[path].replace("\n", "\r\n")  # CRLF: still the same normalized file
    return {
        "org/click": click,
        "fork/click": drop_files(click, 6),  # a fork with a sixth of the files gone
        "renamed/click": renamed(click),
        "org/jinja2": jinja,
        "mirror/jinja2": reindent(jinja),
        "org/attr": attr,
        "team/app": app,
    }


def renamed(repo: dict) -> dict:
    """Four identifiers renamed (same lengths, so the original stays the larger by name only):
    Jaccard ~0.79 to the original at 5-grams."""
    for old, new in (("ctx", "env"), ("param", "field"), ("value", "datum"), ("name", "word")):
        repo = rename_identifier(repo, old, new)
    return repo


STARS = {"org/attr": 500, "team/app": 3}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    root = tmp_path_factory.mktemp("dedup")
    inp = write_input(str(root / "in"), corpus(), shards=3, stars=STARS)
    out = str(root / "out")
    stats = run(DedupConfig(), inp, out)
    return inp, out, stats


def clusters_by_repo(out):
    return {r["repo"]: r for r in io.read_parquet(os.path.join(out, "clusters.parquet")).to_pylist()}


def test_forks_and_renamed_copies_are_removed_whole(single):
    _, out, _ = single
    rows = clusters_by_repo(out)
    assert rows["org/click"]["kept"] and rows["org/jinja2"]["kept"]
    for repo, kept in (("fork/click", "org/click"), ("renamed/click", "org/click"), ("mirror/jinja2", "org/jinja2")):
        assert not rows[repo]["kept"] and rows[repo]["kept_repo"] == kept
        assert rows[repo]["cluster"] == rows[kept]["cluster"]
        assert 0.6 < rows[repo]["jaccard"] <= 1.0
    kept_repos = {repo for repo, _ in read_kept(out)}
    assert not kept_repos & {"fork/click", "renamed/click", "mirror/jinja2"}  # no fragment survives


def test_unrelated_repositories_are_never_merged(single):
    _, out, _ = single
    rows = clusters_by_repo(out)
    originals = ["org/click", "org/jinja2", "org/attr", "team/app"]
    assert len({rows[r]["cluster"] for r in originals}) == 4
    assert all(rows[r]["kept"] for r in originals)


UNRELATED = [
    "attr",
    "blinker",
    "cachetools",
    "certifi",
    "click",
    "cycler",
    "dateutil",
    "docker",
    "filelock",
    "flask",
    "idna",
    "itsdangerous",
    "jinja2",
    "jmespath",
    "markupsafe",
    "pluggy",
    "pyasn1",
    "smmap",
    "sqlparse",
    "tqdm",
    "wrapt",
    "yaml",
    "zipp",
    "gitdb",
]


def test_two_dozen_distinct_packages_form_no_cluster(tmp_path):
    repos = {f"pypi/{p}": package_repo(p, max_files=8) for p in UNRELATED}
    stats = run(DedupConfig(), write_input(str(tmp_path / "in"), repos, shards=2), str(tmp_path / "out"))
    assert stats["clusters"] == 0 and stats["kept_repos"] == len(UNRELATED)


def test_vendored_files_are_removed_as_exact_copies_with_the_reason(single):
    _, out, stats = single
    copies = io.read_parquet(os.path.join(out, "exact_duplicates.parquet")).to_pylist()
    assert len(copies) == 3 and stats["removed_exact_files"] == 3
    for row in copies:
        assert row["repo"] == "team/app" and row["path"] == f"vendor/{row['kept_path']}"
        assert row["kept_repo"] == "org/attr" and row["decided_by"] == "stars"
    kept = read_kept(out)
    assert not [p for r, p in kept if r == "team/app" and p.startswith("vendor/")]
    assert len([p for r, p in kept if r == "org/attr"]) == 12


def test_counts_add_up_and_outputs_keep_the_contract(single):
    _, out, stats = single
    assert stats["invariant_ok"]
    assert stats["input_repos"] == 7 == stats["kept_repos"] + stats["removed_near_repos"]
    assert stats["removed_near_repos"] == 3 and stats["clusters"] == 2
    assert stats["input_files"] == stats["kept_files"] + stats["removed_near_files"] + stats["removed_exact_files"]
    assert stage.read_stats(out) == stats
    assert "## Largest clusters" in io.read_text(os.path.join(out, "report.md"))
    for url in io.expand(os.path.join(out, "files", "*.parquet")):
        table = pq.read_table(url)
        assert table.schema.equals(FILE_SCHEMA)
        keys = list(zip(table.column("repo").to_pylist(), table.column("path").to_pylist()))
        assert keys == sorted(keys)


def test_same_input_gives_the_same_bytes(single, tmp_path):
    inp, out, _ = single
    again = str(tmp_path / "again")
    run(DedupConfig(), inp, again)
    for rel in ["clusters.parquet", "exact_duplicates.parquet", "stats.json", "report.md"] + [
        f"files/shard-{i:05d}-of-00003.parquet" for i in range(3)
    ]:
        assert io.read_bytes(os.path.join(out, rel)) == io.read_bytes(os.path.join(again, rel)), rel


def test_sharded_steps_equal_the_single_process_run(single, tmp_path):
    inp, out, stats = single
    sharded = str(tmp_path / "sharded")
    config = DedupConfig()
    for rank in (1, 0):  # any order
        signature_shard(config, inp, sharded, rank, 2)
    cluster(config, sharded, 2)
    for rank in (0, 1):
        write_shard(config, inp, sharded, rank, 2)
    assert finish(sharded, 2) == stats
    for rel in ["clusters.parquet", "exact_duplicates.parquet"] + [
        f"files/shard-{i:05d}-of-00003.parquet" for i in range(3)
    ]:
        assert io.read_bytes(os.path.join(out, rel)) == io.read_bytes(os.path.join(sharded, rel)), rel


def test_a_finished_run_resumes_from_its_markers(single, tmp_path):
    inp, out, stats = single
    moved = tmp_path / "input-gone"
    os.rename(inp, moved)
    try:
        assert run(DedupConfig(), inp, out) == stats  # no step needs the input again
    finally:
        os.rename(moved, inp)


def test_exact_check_agrees_on_this_corpus(single, tmp_path):
    inp, out, stats = single
    exact = run(DedupConfig(check="exact"), inp, str(tmp_path / "exact"))
    assert read_kept(str(tmp_path / "exact")) == read_kept(out)
    assert exact["removed_near_repos"] == stats["removed_near_repos"]
