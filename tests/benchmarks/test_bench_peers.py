"""bench_peers.py --smoke: the whole comparison on tiny synthetic data, peers not installed skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
