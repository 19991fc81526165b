"""LSH band choice, candidate pairs, union-find and the keep rules, on small exact cases."""

import numpy as np
import pyarrow as pa
import pytest

from codemill.dedup import DedupConfig, choose_bands
from codemill.dedup.exact import content_hash, find_copies, repo_preference
from codemill.dedup.near import candidate_pairs, choose_kept
from codemill.dedup.unionfind import UnionFind
from codemill.stage import InputError, config_from_options


def test_band_choice_matches_the_known_optima():
    assert choose_bands(0.7, 256) == (25, 10)  # text-dedup's 25 x 10 for threshold 0.7
    assert DedupConfig(check="none").band_layout() == (25, 10)
    bands, rows = DedupConfig().band_layout()  # with a check, the bands aim at recall
    assert bands * rows <= 256 and 1 - (1 - 0.7**rows) ** bands > 0.95
    assert DedupConfig(bands=16, rows=16).band_layout() == (16, 16)


@pytest.mark.parametrize(
    "bad",
    [
        dict(bands=30, rows=10),
        dict(bands=5),
        dict(threshold=0.0),
        dict(check="maybe"),
        dict(ngram=0),
        dict(chunk_bytes=10),
    ],
)
def test_bad_config_is_rejected_by_name(bad):
    with pytest.raises(InputError, match="dedup: "):
        DedupConfig(**bad).ensure_valid()


def test_pipeline_options_are_coerced_back_to_field_types():
    config = config_from_options(
        DedupConfig, {"num_perm": 128.0, "threshold": 1, "check": "exact"}, stage="dedup", seed=4
    )
    assert (config.num_perm, config.threshold, config.check, config.seed) == (128, 1.0, "exact", 4)
    with pytest.raises(InputError, match="unknown setting"):
        config_from_options(DedupConfig, {"treshold": 0.8}, stage="dedup")


def components(n, edges):
    """Reference connected components (smallest member as label) by graph search."""
    adjacent = {i: set() for i in range(n)}
    for a, b in edges:
        adjacent[a].add(b)
        adjacent[b].add(a)
    label = list(range(n))
    for start in range(n):
        stack, seen = [start], {start}
        while stack:
            for nxt in adjacent[stack.pop()] - seen:
                seen.add(nxt)
                stack.append(nxt)
        label[start] = min(seen)
    return label


def test_union_find_matches_graph_search():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        edges = rng.integers(0, n, size=(int(rng.integers(0, n)), 2))
        sets = UnionFind(n)
        for chunk in np.array_split(edges, 3):  # unions arrive band by band
            sets.union(chunk[:, 0], chunk[:, 1])
        assert sets.groups().tolist() == components(n, edges.tolist())


def test_candidate_pairs_link_each_member_to_the_first_of_its_bucket():
    keys = np.array([5, 9, 5, 7, 9, 5], dtype=np.uint64)
    ids = np.array([10, 11, 12, 13, 14, 15])
    left, right = candidate_pairs(keys, ids)
    assert sorted(zip(left.tolist(), right.tolist())) == [(10, 12), (10, 15), (11, 14)]


def test_cluster_keeps_most_files_then_bytes_then_name():
    roots = np.array([0, 0, 0, 3, 3, 5])
    files = np.array([3, 5, 5, 2, 2, 1])
    size = np.array([9, 10, 20, 7, 7, 1])
    names = np.array(["a", "b", "c", "z", "y", "solo"])
    assert choose_kept(roots, files, size, names).tolist() == [2, 2, 2, 4, 4, 5]


def test_exact_copies_stay_in_the_repository_with_more_stars_then_files_then_name():
    stars = np.array([10, 50, -1, -1])
    files = np.array([3, 1, 4, 9])
    names = np.array(["r0", "r1", "r2", "r3"])
    rank = repo_preference(stars, files, names)
    assert rank.tolist() == [1, 0, 3, 2]
    table = pa.table(
        {
            "repo_index": [0, 1, 2, 3, 2, 2],
            "path": ["a", "b", "c", "d", "e", "f"],
            "hash": ["h", "h", "h", "h", "g", "g"],
        }
    )
    dropped, kept = find_copies(table, rank)
    # h: r1 has the most stars; g: both copies are in r2, so both stay.
    assert sorted(zip(dropped.tolist(), kept.tolist())) == [(0, 1), (2, 1), (3, 1)]


def test_content_hash_ignores_line_ends_and_trailing_blanks_only():
    assert content_hash("a = 1\r\nb = 2  \n\n") == content_hash("\na = 1\nb = 2")
    assert content_hash("a = 1\nb = 2") != content_hash("a = 1\n  b = 2")
    assert content_hash(None) == content_hash("")
