"""The scale benchmark runs end to end in its smoke mode (a tiny chain, no gunicorn), and its growth
exponents and extrapolation are the log-log slopes they claim to be."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_scale


def test_smoke_run_writes_every_phase(tmp_path, capsys):
    out = tmp_path / "smoke.json"
    assert bench_scale.main(["--smoke", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("series", "rows", "train_s", "train_peak_mb", "publish_s", "artifact_mb", "log_table_mb"):
        assert result[key] > 0, key
    assert result["publish_rows"] == result["series"] * 52
    assert result["forecast_rows_month"] == 4 * result["publish_rows"]
    assert "| stores | series |" in capsys.readouterr().out


def test_exponents_are_log_log_slopes_and_extrapolate_from_the_largest_sizes():
    sizes = [{"series": s, "train_s": 2.0 * s, "publish_s": 0.5 * s**1.5} for s in (100, 400, 2000)]
    growth = bench_scale.exponents(sizes)
    assert growth == {"train_s": pytest.approx(1.0), "publish_s": pytest.approx(1.5)}
    ahead = bench_scale.extrapolate(sizes, 8000)
    assert ahead["train_s"] == pytest.approx(16000, rel=1e-3)
    assert ahead["publish_s"] == pytest.approx(0.5 * 8000**1.5, rel=1e-3)
