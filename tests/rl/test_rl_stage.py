"""Short rl runs on mined-style tasks and on stdin/stdout problems: rollouts agree with the
one scorer, every monitor has a value per step, zero-variance groups stay out of the loss,
and the model loads with transformers."""

from __future__ import annotations

import glob
import math
import os

import pyarrow.parquet as pq
import pytest

from codemill import runner
from codemill.evaluate.sandbox import Sandbox
from codemill.rl import data
from codemill.rl import report as _report
from codemill.rl.reward import score_problem
from codemill.tracking import NoOpTracker
from tests.rl.conftest import fast_config

STEPS = 3


class Recorder(NoOpTracker):
    """Keeps what the stage logs to MLflow."""

    def __init__(self):
        self.metrics: list[tuple[int | None, dict]] = []

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))


def _rollouts(output: str) -> list[dict]:
    return [r for f in sorted(glob.glob(f"{output}/rollouts/*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def mined_run(task_model, tasks_dir, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("rl-mined"))
    config = fast_config(max_steps=STEPS, prompts_per_step=3, reward="fraction")
    tracker = Recorder()
    stats = runner.run("rl", config, output=output, model=task_model, tasks=tasks_dir, tracker=tracker)
    return output, stats, config, tracker


def test_one_rollout_row_per_completion_with_the_scorers_reward(mined_run, tasks_dir):
    from codemill.tasks.score import load_tasks, score_one

    output, stats, config, _ = mined_run
    rows = _rollouts(output)
    assert len(rows) == STEPS * config.prompts_per_step * config.num_generations
    assert {r["step"] for r in rows} == set(range(1, STEPS + 1))
    tasks = {t.task_id: t for t in load_tasks(tasks_dir)}
    with Sandbox() as box:
        for r in rows:
            verdict = score_one(tasks[r["task_id"]], r["completion"], box, 5.0)
            assert (r["reward"], r["passed"]) == (verdict.fraction, verdict.passed), r
    assert any(r["passed"] for r in rows) and not all(r["passed"] for r in rows)
    assert all(r["length"] == 1 and r["truncated"] for r in rows)  # one-token completions never reach EOS


def test_every_monitor_has_one_value_per_step(mined_run):
    _, stats, _, _ = mined_run
    monitors = stats["monitors"]
    for name in _report.MONITORS:
        if name == "kl":
            assert name not in monitors  # beta is 0
            continue
        assert len(monitors[name]) == STEPS and all(v is not None for v in monitors[name]), name
    assert stats["steps_series"] == [1, 2, 3]
    assert 0 < monitors["entropy"][0] <= math.log(11) + 1e-6  # at most log(vocabulary size)
    assert all(v > 0 for v in monitors["executions_per_second"]) and all(v > 0 for v in monitors["sandbox_latency"])
    assert [e["step"] for e in stats["heldout"]] == [0, 2, 3] and stats["fit"]["on"] == "heldout"


def test_monitors_go_to_mlflow_once_per_step(mined_run):
    _, stats, _, tracker = mined_run
    per_step = [(step, m) for step, m in tracker.metrics if "pass_rate" in m]
    assert [step for step, _ in per_step] == [1, 2, 3]
    for step, logged in per_step:
        for name in _report.MONITORS:
            if name != "kl":
                assert logged[name] == stats["monitors"][name][step - 1], (name, step)
    assert [step for step, m in tracker.metrics if "heldout_pass_rate" in m] == [0, 2, 3]
    # fit_min_points 3, and the step-0 point has no compute: never enough points in this run
    assert not any("fit_A" in m for _, m in tracker.metrics) and stats["fit"]["A"] is None


def test_zero_variance_groups_are_excluded_and_counted(mined_run):
    output, stats, config, _ = mined_run
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in _rollouts(output):
        groups.setdefault((r["step"], r["group"]), []).append(r)
    flat = [g for g in groups.values() if len({r["reward"] for r in g}) == 1]
    assert stats["zero_variance_groups"] == len(flat) and stats["groups"] == len(groups)
    for g in groups.values():
        assert {r["in_loss"] for r in g} == {len({r["reward"] for r in g}) > 1}
    per_step = [
        sum(1 for (s, _), g in groups.items() if s == step and g in flat) / config.prompts_per_step
        for step in range(1, STEPS + 1)
    ]
    assert stats["monitors"]["zero_variance"] == pytest.approx(per_step)


def test_the_model_loads_with_transformers_and_was_trained(mined_run, task_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output, stats, _, _ = mined_run
    trained = AutoModelForCausalLM.from_pretrained(f"{output}/model")
    start = AutoModelForCausalLM.from_pretrained(task_model)
    AutoTokenizer.from_pretrained(f"{output}/model")
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), start.state_dict().values()))
    report = open(f"{output}/report.md", encoding="utf-8").read()
    assert "Zero-variance groups left out of the loss" in report and "monitors.png" in report
    assert stats["resumed_from_step"] == 0


def test_rl_on_stdin_stdout_problems_with_kl(line_model, problems_file, tmp_path):
    output = str(tmp_path / "rl")
    config = fast_config(problems=problems_file, loss="cispo", beta=0.05, reward="pass", max_steps=2)
    stats = runner.run("rl", config, output=output, model=line_model)
    assert len(stats["monitors"]["kl"]) == 2 and stats["data"]["problems"]["kept"] == 4
    loaded, _ = data.load(config, None)
    by_id = {t.task_id: t for t in loaded.train}
    rows = _rollouts(output)
    assert len(rows) == 2 * config.prompts_per_step * config.num_generations
    with Sandbox() as box:
        for r in rows:
            score = score_problem(box, by_id[r["task_id"]], r["completion"], chat=False)
            assert (r["reward"], r["passed"], r["fraction"]) == (float(score.passed), score.passed, score.fraction)


def test_difficulty_filter_and_no_positive_resampling(line_model, problems_file, tmp_path):
    output = str(tmp_path / "rl")
    config = fast_config(
        problems=problems_file,
        difficulty_samples=4,
        difficulty_min=0.0,
        difficulty_max=0.75,
        npr_threshold=0.3,
        npr_window=1,
        max_steps=3,
        lr=0.05,
    )
    stats = runner.run("rl", config, output=output, model=line_model)
    difficulty = stats["difficulty_filter"]
    assert difficulty["scored"] == 4 and difficulty["kept"] + sum(difficulty["dropped"].values()) == 4
    rows = _rollouts(output)
    for retired in stats["retired"]:
        later = [r for r in rows if r["task_id"] == retired["task_id"] and r["step"] > retired["step"]]
        assert later == [], retired
        group = [r for r in rows if r["task_id"] == retired["task_id"] and r["step"] == retired["step"]]
        assert sum(r["passed"] for r in group) / len(group) >= 0.3
    assert stats["retired_tasks"] == len(stats["retired"]) and stats["pool_size"] == difficulty["kept"] - len(
        stats["retired"]
    )


def test_chat_models_get_the_template_and_their_answer_runs(line_model, problems_file, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from codemill.sft.template import CHATML

    model = str(tmp_path / "chat-model")
    shutil.copytree(line_model, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = CHATML  # sft's template (its markers are <unk> in this vocabulary)
    tok.save_pretrained(model)
    output = str(tmp_path / "rl")
    stats = runner.run(
        "rl", fast_config(problems=problems_file, max_steps=1, format_weight=0.1), output=output, model=model
    )
    rows = _rollouts(output)
    assert stats["monitors"]["format_rate"] == [0.0]  # line tokens never write <think>
    passed = [r for r in rows if r["passed"]]
    assert all(r["completion"].count("print(") == 1 for r in passed)
    assert all(r["reward"] == r["fraction"] for r in rows)  # no format bonus without the format


def test_several_updates_per_batch_make_the_clip_ratio_bite(line_model, problems_file, tmp_path):
    config = fast_config(
        problems=problems_file, num_iterations=3, lr=0.2, max_steps=2, loss="grpo", scale_rewards="group"
    )
    stats = runner.run("rl", config, output=str(tmp_path / "rl"), model=line_model)
    assert max(stats["monitors"]["clip_ratio"]) > 0
    assert stats["monitors"]["clip_ratio"] == pytest.approx(
        [a + b for a, b in zip(stats["monitors"]["clip_ratio_low"], stats["monitors"]["clip_ratio_high"])]
    )


def test_the_scalerl_fit_is_logged_once_enough_points_exist(task_model, tasks_dir, tmp_path):
    tracker = Recorder()
    output = str(tmp_path / "rl")
    stats = runner.run(
        "rl",
        fast_config(max_steps=4, eval_every=1, eval_generations=4, fit_min_points=3),
        output=output,
        model=task_model,
        tasks=tasks_dir,
        tracker=tracker,
    )
    fitted = [step for step, m in tracker.metrics if "fit_A" in m and "heldout_pass_rate" in m]
    assert fitted == [3, 4]  # points with compute: steps 1, 2, 3, 4; three are needed
    final = [m for _, m in tracker.metrics if "fit_A" in m and "compute_flops" in m]
    assert [m["fit_A"] for m in final] == [stats["fit"]["A"]]  # and the final fit, with the stage's totals
    assert stats["fit"]["on"] == "heldout" and stats["fit"]["points"] == 4 and 0 <= stats["fit"]["A"] <= 1
    assert (
        os.path.getsize(f"{output}/fit.png") > 1000
        and "ScaleRL fit on the heldout" in open(f"{output}/report.md", encoding="utf-8").read()
    )
