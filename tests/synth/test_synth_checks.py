"""Seeds (quotas, determinism), decontamination (both rules) and dedup (exact and near)."""

from __future__ import annotations

import pytest

from codemill.stage import InputError
from codemill.synth import seeds
from codemill.synth.config import SynthConfig
from codemill.synth.filters import Contamination, Dedup
from tests.synth.conftest import LONG, humaneval_0, write_corpus


def test_quotas_use_the_largest_remainder():
    assert seeds.quotas(10, {"python": 0.7, "javascript": 0.3}) == {"python": 7, "javascript": 3}
    assert seeds.quotas(2, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 1, "b": 1, "c": 0}


def test_seeds_follow_the_quotas_and_the_seed(tmp_path):
    lines = "\n".join(f"line {i}" for i in range(40))
    corpus = write_corpus(
        tmp_path,
        [(f"p{i}.py", "python", lines) for i in range(3)] + [("a.js", "javascript", lines), ("b.go", "go", lines)],
    )
    drawn, stats = seeds.draw(corpus, 8, {"python": 0.75, "javascript": 0.25}, 0, 1, 15)
    assert [s.language for s in drawn].count("python") == 6 and stats["languages"]["javascript"]["drawn"] == 2
    assert all(1 <= len(s.snippet.splitlines()) <= 15 and s.snippet in lines for s in drawn)
    assert len({s.origin.split(":")[0] for s in drawn if s.language == "python"}) == 3  # every file before repeats
    assert seeds.draw(corpus, 8, {"python": 0.75, "javascript": 0.25}, 0, 1, 15)[0] == drawn
    assert seeds.draw(corpus, 8, {"python": 0.75, "javascript": 0.25}, 1, 1, 15)[0] != drawn
    with pytest.raises(InputError, match="no seed snippet"):
        seeds.draw(corpus, 3, {"rust": 1.0}, 0, 1, 15)


def test_decontamination_by_ngram_and_by_lowercase_substring():
    check = Contamination(["humaneval"], ["prompt", "canonical_solution", "test"])
    prompt = humaneval_0()["prompt"]
    assert "n-gram rule" in check.find("Solve this:\n" + prompt)
    # Magicoder's rule: the whole prompt upper-cased shares no (case-sensitive) token window, yet is a copy
    assert "substring rule" in check.find("Solve this:\n" + prompt.upper())
    assert check.find(LONG) is None


def test_dedup_exact_after_whitespace_and_near_by_minhash():
    dedup = Dedup(0.8, seed=0)
    assert dedup.check("a", LONG) is None
    assert dedup.check("b", LONG.replace(" ", "\n  ")).startswith("same text as a")
    assert dedup.check("c", LONG.replace("possibly empty", "maybe empty")).startswith("near-duplicate of a")
    assert dedup.check("d", "Write is_palindrome(s): True when s reads the same backwards.") is None


@pytest.mark.parametrize(
    "change, words",
    [
        ({"mode": "x"}, "mode"),
        ({"pass_rate_range": [0.6, 0.1]}, "pass_rate_range"),
        ({"languages": ["python=x"]}, "NAME=SHARE"),
        ({"kinds": ["essay"]}, "kinds"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
        ({"agreement": 0}, "agreement"),
    ],
)
def test_config_names_the_bad_field(change, words):
    with pytest.raises(InputError, match=words):
        SynthConfig(**change).ensure_valid()
