"""bench_origins.py --smoke: one origin on tiny synthetic data, every figure present."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_origins


def test_smoke_run_reports_accuracy_and_coverage(tmp_path: Path, capsys) -> None:
    out = tmp_path / "origins.json"
    bench_origins.main(["--smoke", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "load average at start" in printed and "totals 80/95" in printed
    (figures,) = json.loads(out.read_text())["origins"]
    assert figures["rows"] > 0 and figures["naive_wmae"] > 0 and figures["ratio"] > 0
    for key in ("coverage_80", "coverage_95"):
        assert 0 <= figures[key] <= 1 and 0 <= figures["store_totals"][key] <= 1
    assert figures["store_totals"]["store_weeks"] > 0 and figures["by_bucket"]
    assert "totals by level" in printed
    for level in ("chain", "department", "store"):
        entry = figures["levels"][level]
        assert entry["totals"] > 0 and entry["ratio_to_baseline"] > 0 and entry["by_bucket"]
        assert 0 <= entry["coverage_80"] <= entry["coverage_95"] <= 1
    scores = figures["scores"]
    assert scores["interval_score_80"] > 0 and scores["interval_score_95"] > 0
    assert all(scores[f"wql_{q}"] > 0 for q in (0.1, 0.5, 0.9))
    assert set(scores["by_volatility_quarter"]) == set(scores["by_size_quarter"]) == {"Q1", "Q2", "Q3", "Q4"}
    assert all("by_horizon" in quarter for quarter in scores["by_size_quarter"].values())
    assert "IS 80 / 95" in printed
