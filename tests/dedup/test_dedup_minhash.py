"""MinHasher: tokens and shingles as the regex definition says, windows invisible in the
result, estimates close to the exact Jaccard, deterministic per seed."""

import re

import numpy as np
import pytest
from dedup_corpus import package_repo

from codemill.dedup import MinHasher, estimated_jaccard
from codemill.dedup.minhash import MAX_HASH, sorted_distinct

TOKEN = re.compile(rb"[a-z0-9_]+")


def doc_of(package: str, max_files: int = 20) -> bytes:
    repo = package_repo(package, max_files=max_files)
    return b"\n".join(repo[p].encode() for p in sorted(repo))


def regex_shingles(doc: bytes, n: int = 5) -> set:
    tokens = TOKEN.findall(doc.lower())
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@pytest.fixture(scope="module")
def click_doc() -> bytes:
    return doc_of("click")


def test_shingle_count_and_distinct_set_match_the_regex_definition(click_doc):
    signature, count, distinct = MinHasher().signature(click_doc, keep_shingles=True)
    tokens = TOKEN.findall(click_doc.lower())
    assert count == len(tokens) - 4
    assert len(distinct) == len(regex_shingles(click_doc))  # no 64-bit collisions, no lost shingles
    assert signature.dtype == np.uint64 and signature.shape == (256,)


def test_small_windows_give_the_same_signature(click_doc):
    whole = MinHasher(chunk_bytes=1 << 22).signature(click_doc, keep_shingles=True)
    windowed = MinHasher(chunk_bytes=1024).signature(click_doc, keep_shingles=True)
    assert np.array_equal(whole[0], windowed[0])
    assert whole[1] == windowed[1]
    assert np.array_equal(whole[2], windowed[2])


def test_estimate_is_close_to_exact_jaccard():
    repo = package_repo("jinja2", max_files=30)
    paths = sorted(repo)
    hasher = MinHasher()
    for cut in (4, 10, 20):  # overlapping windows of the file list: a range of Jaccard values
        a = b"\n".join(repo[p].encode() for p in paths[:-cut])
        b = b"\n".join(repo[p].encode() for p in paths[cut // 2 :])
        sa, sb = regex_shingles(a), regex_shingles(b)
        exact = len(sa & sb) / len(sa | sb)
        estimate = estimated_jaccard(hasher.signature(a)[0], hasher.signature(b)[0])
        assert abs(estimate - exact) < 0.1, (cut, exact, estimate)


def test_multiplier_permutations_estimate_without_bias_at_the_binomial_error():
    # Random sets with known Jaccard: the error of 256 permutations should be that of 256
    # independent coin flips, sqrt(J (1 - J) / 256) ~ 0.03, and centred on zero.
    rng = np.random.default_rng(11)
    hasher = MinHasher(seed=5)
    errors, bound = [], []
    for _ in range(200):
        common, only = int(rng.integers(600, 1800)), int(rng.integers(100, 700))
        pool = rng.integers(0, MAX_HASH, common + 2 * only, dtype=np.uint64, endpoint=True)
        a, b = pool[: common + only], np.concatenate([pool[:common], pool[common + only :]])
        exact = common / (common + 2 * only)
        estimate = estimated_jaccard(hasher.signature_of_shingles(a), hasher.signature_of_shingles(b))
        errors.append(estimate - exact)
        bound.append(exact * (1 - exact) / 256)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.006  # 3 standard errors of the mean
    assert 0.8 < np.sqrt((errors**2).mean() / np.mean(bound)) < 1.2


def test_case_and_separators_do_not_matter_but_tokens_do():
    hasher = MinHasher()
    a = hasher.signature(b"def Foo(bar):\n    return bar + 1  # caf\xc3\xa9")[0]
    b = hasher.signature(b"def  foo( BAR ) : return bar+1 caf\xe2\x80\x94")[0]
    c = hasher.signature(b"def foo(baz):\n    return baz + 1  # caf")[0]
    assert np.array_equal(a, b)
    assert estimated_jaccard(a, c) < 0.5


def test_short_and_empty_documents():
    hasher = MinHasher()
    sig, count = hasher.signature(b"import os")
    assert count == 1 and (sig < MAX_HASH).all()
    assert np.array_equal(sig, hasher.signature(b"IMPORT   os\n")[0])
    empty, count = hasher.signature(b"\n  ## \n")
    assert count == 0 and (empty == MAX_HASH).all()


def test_a_token_longer_than_a_window_is_hashed_without_error():
    doc = b"x" * 5000 + b" tail of the document is here"
    sig, count = MinHasher(chunk_bytes=1024).signature(doc)
    assert count > 0 and (sig < MAX_HASH).all()


def test_seed_decides_the_permutations(click_doc):
    one = MinHasher(seed=1).signature(click_doc)[0]
    assert np.array_equal(one, MinHasher(seed=1).signature(click_doc)[0])
    assert not np.array_equal(one, MinHasher(seed=2).signature(click_doc)[0])


def test_sorted_distinct_matches_numpy_unique():
    values = np.random.default_rng(0).integers(0, 50, 1000).astype(np.uint64)
    assert np.array_equal(sorted_distinct(values), np.unique(values))
    assert len(sorted_distinct(np.empty(0, dtype=np.uint64))) == 0
