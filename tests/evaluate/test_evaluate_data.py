"""Reading samples files: a bad byte costs one line, every quarantined line is numbered,
duplicates are counted."""

import json
import os

from codemill.evaluate import EvalConfig, score_samples


def test_a_non_utf8_line_is_quarantined_with_its_number_and_the_rest_is_scored(tmp_path, problems, tracker):
    good = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems[:2]]
    lines = [
        json.dumps(good[0]).encode(),
        b'{"task_id": "HumanEval/1", "completion": "\xff\xfe"}',
        json.dumps(good[1]).encode(),
        json.dumps(good[1]).encode(),
        b"{broken",
        json.dumps({"task_id": "HumanEval/999", "completion": ""}).encode(),
        json.dumps({"task_id": ["x"], "completion": ""}).encode(),
        json.dumps({"task_id": "HumanEval/0"}).encode(),
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = str(tmp_path / "o")
    stats = score_samples(EvalConfig(workers=2, limit=2), str(path), "humaneval", out, tracker)
    assert stats["humaneval"]["given"]["samples"] == 3 and stats["humaneval"]["given"]["pass@1"] == 1.0
    assert stats["by_reason"] == {"not_utf8": 1, "malformed_json": 1, "unknown_task": 2, "no_completion": 1}
    assert stats["quarantined"] == 5 and stats["duplicate_samples"] == 1
    rows = [json.loads(line) for line in open(os.path.join(out, "quarantine.jsonl"))]
    by_line = {int(r["source"].rsplit(":", 1)[1]): r["reason"] for r in rows}
    assert by_line == {2: "not_utf8", 5: "malformed_json", 6: "unknown_task", 7: "unknown_task", 8: "no_completion"}
    assert all(r["source"].startswith(str(path) + ":") for r in rows)
    assert "\ufffd" in next(r["raw"] for r in rows if r["reason"] == "not_utf8")
