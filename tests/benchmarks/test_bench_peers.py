"""bench_peers.py --smoke: the whole comparison on tiny synthetic data, peers not installed skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from app.forecasting.synthetic import generate_dataset
from benchmarks import bench_peers

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_scores_every_model_or_skips_it(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_peers.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "load average at start" in done.stdout and "load average at end" in done.stdout
    figures = json.loads(out.read_text())
    (origin,) = figures["origins"].values()
    models = origin["models"]
    assert {"seasonal naive", "hgb", "MSTL + AutoETS"} <= set(models)
    assert any(name.startswith("LightGBM") for name in models)
    assert models["seasonal naive"]["ratio"] == 1.0
    for name, m in models.items():
        if "skipped" in m:
            assert m["skipped"].startswith("not installed"), name
            continue
        assert m["rows"] == origin["rows"] > 0, name
        assert m["wmae"] > 0 and m["ratio"] > 0, name
        assert m["coverage_80"] is None or 0 <= m["coverage_80"] <= 1, name
        assert name in done.stdout


def test_a_missing_peers_interpreter_lacks_every_package(tmp_path: Path) -> None:
    lacking = bench_peers.missing_packages(str(tmp_path / "no-such-python"))
    assert lacking == {"mstl": ["statsforecast"], "lgbm": ["mlforecast", "lightgbm"]}


def test_history_is_a_regular_grid_from_each_first_sale_to_the_origin() -> None:
    dataset = generate_dataset(seed=0, n_stores=1, n_depts=2)
    sales = dataset.sales
    first, second = sorted(sales["dept"].unique())
    late = (sales["dept"] == first) & (sales["date"] < "2011-01-07")
    gap = (sales["dept"] == second) & (sales["date"] == "2011-06-03")
    dataset = replace(dataset, sales=sales[~late & ~gap].reset_index(drop=True))
    origin = pd.Timestamp("2012-01-27")
    history = bench_peers.history_frame(dataset, origin)
    assert not history["y"].isna().any()
    starts = history.groupby("dept")["ds"].agg(["min", "max", "count"])
    assert starts.loc[first, "min"] == pd.Timestamp("2011-01-07")
    assert (starts["max"] == origin).all()
    assert (starts["count"] == (origin - starts["min"]).dt.days // 7 + 1).all()
    filled = history[(history["dept"] == second) & (history["ds"] == "2011-06-03")]
    assert filled["y"].tolist() == [0.0]
