"""stage.publish_kfp: what a component hands the KFP UI. A NaN or infinite metric fails the
whole KFP component (kubeflow/pipelines#12227), so those stay out of Metrics."""

import json
import math

from kfp.dsl import Markdown, Metrics

from codemill import io
from codemill.stage import publish_kfp


def test_non_finite_values_are_left_out_of_kfp_metrics_and_kept_in_stats(tmp_path, capsys):
    stats = {
        "val_loss_end": float("nan"),
        "perplexity": {"heldout": float("inf"), "train": 3.5},
        "steps": 60,
        "ok": True,
    }
    io.write_json(str(tmp_path / "stats.json"), stats)
    (tmp_path / "report.md").write_text("# train\n")
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    report = Markdown(uri=str(tmp_path / "report"))
    report.path = str(tmp_path / "report-out.md")

    publish_kfp(str(tmp_path), stats, metrics, report)

    assert metrics.metadata == {"ok": 1.0, "perplexity.train": 3.5, "steps": 60.0}
    assert all(math.isfinite(v) for v in metrics.metadata.values())
    assert "perplexity.heldout, val_loss_end" in capsys.readouterr().out
    kept = json.loads((tmp_path / "stats.json").read_text(), parse_constant=lambda c: c)
    assert kept["val_loss_end"] == "NaN" and kept["perplexity"]["heldout"] == "Infinity"
    assert (tmp_path / "report-out.md").read_text() == "# train\n"
