"""r1's own steps: sft on the data folders that kept samples (or a recorded skip that hands the
base on), and the comparison that registers nothing without tracking and picks the best stage."""

import json
import os

from codemill import runner
from codemill.recipes import r1


def _stage(folder, stats: dict) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "stats.json"), "w") as f:
        json.dump(stats, f)
    return str(folder)


def test_only_folders_that_kept_samples_are_trained_on(tmp_path):
    skipped = _stage(tmp_path / "synth", {"skipped": True, "reason": "no teacher URL"})
    empty = _stage(tmp_path / "coldstart", {"skipped": False, "kept": 0})
    tasks = _stage(tmp_path / "tasks", {"tasks": 3})
    keep, left_out = r1.usable_folders(f"{skipped},{empty},{tasks},{tmp_path / 'missing'}")
    assert keep == [tasks]
    assert left_out == {
        skipped: "skipped: no teacher URL",
        empty: "kept 0 samples",
        str(tmp_path / "missing"): "no stats.json",
    }


def test_sft_with_nothing_kept_records_the_skip_and_hands_the_base_on(tiny_model_dir, tmp_path):
    empty = _stage(tmp_path / "coldstart", {"skipped": False, "kept": 0})
    out = str(tmp_path / "sft")
    stats = r1.sft_or_skip(tiny_model_dir, empty, out, "tiny", {}, 0, "none", "")
    assert stats["skipped"] and "kept 0 samples" in stats["reason"] and stats["model_from"] == tiny_model_dir
    for name in os.listdir(tiny_model_dir):
        assert (
            open(os.path.join(out, "model", name), "rb").read() == open(os.path.join(tiny_model_dir, name), "rb").read()
        )
    assert json.load(open(os.path.join(out, "stats.json")))["skipped"]


def _evaluated(run_dir, stage: str, humaneval: float, tasks: float, completions: list[str], stats: dict):
    _stage(run_dir / stage, stats)
    ev = run_dir / f"{stage}_evaluate"
    ev.mkdir()
    metrics = {
        "humaneval": {"greedy": {"pass@1": humaneval, "tasks_total": 4}},
        "tasks": {"greedy": {"pass@1": tasks, "tasks_total": 2}},
    }
    (ev / "metrics.json").write_text(json.dumps(metrics))
    rows = [{"benchmark": "humaneval", "mode": "greedy", "completion": c} for c in completions]
    (ev / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_the_comparison_lines_the_stages_up_and_picks_the_best(tmp_path):
    _evaluated(tmp_path, "r1_zero", 0.25, 0.5, ["ab", "abcd"], {"pass_rate_last": 0.4})
    _evaluated(tmp_path, "r1_sft_cold", 0.25, 0.0, ["x"], {"skipped": True, "reason": "no training examples"})
    _evaluated(tmp_path, "r1_rl", 0.5, 0.0, ["abcdef"], {"pass_rate_last": 0.1})
    out = str(tmp_path / "r1_compare")
    stats = runner.run(
        "r1-compare", r1.CompareConfig(stages=["r1_zero", "r1_sft_cold", "r1_rl"]), output=out, run_dir=str(tmp_path)
    )
    by = {r["stage"]: r for r in stats["stages"]}
    assert stats["best"]["stage"] == "r1_rl" and stats["best"]["model"] == str(tmp_path / "r1_rl" / "model")
    assert by["r1_zero"]["response_chars"] == {"humaneval": 3.0} and by["r1_zero"]["rl_pass_rate"] == 0.4
    assert by["r1_sft_cold"]["skipped"] and by["r1_zero"]["registry"] is None  # tracking off: nothing registered
    report = open(os.path.join(out, "report.md")).read()
    assert "| r1_rl | 0.500 | 0.000 |" in report and "skipped: no training examples" in report
    assert "<table" in open(os.path.join(out, "report.html")).read()


def test_ties_go_to_the_later_stage():
    rows = [{"stage": "a", "pass@1": {"humaneval": 0.0}}, {"stage": "b", "pass@1": {"humaneval": 0.0}}]
    assert r1.best_row(rows, ["humaneval", "tasks"])["stage"] == "b"
