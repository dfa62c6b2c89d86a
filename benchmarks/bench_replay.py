"""Replay benchmark: the weekly loop over 2012 on the real files, with its targets checked.

    .venv/bin/python benchmarks/bench_replay.py [--data DIR] [--start 2012-01-27] [--weeks 39]
        [--retrain-every 13] [--json OUT.json] [--forecasts OUT.csv]

Runs `flask replay`'s function on a throw-away SQLite database: train on sales up to --start, then
week by week ingest the actuals, roll forward, publish a run, score by lag, check drift, degradation
and bias. Prints accuracy by lag bucket beside seasonal naive and the backtest, coverage, the interval
scores of the 80% and 95% ranges and the weighted quantile loss at 0.1/0.5/0.9, the alerts,
the time per week (median) and the load average, and which of the loop's targets hold.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.factory import create_app  # noqa: E402
from app.forecasting.synthetic import load_or_generate  # noqa: E402
from app.loop.replay import ReplaySettings, replay, write_forecasts  # noqa: E402
from app.loop.weekly import LoopSettings  # noqa: E402
from benchmarks._results import write_json  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "walmart"


def _score(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def targets(result: dict) -> list[tuple[str, bool, str]]:
    """The replay's targets: (what, held, the figure)."""
    by_lag, backtest = result["accuracy_by_lag"], result["backtest_by_bucket"]
    lag1 = by_lag["1"]
    checks = [("lag-1 WMAE <= 0.80 x seasonal naive", lag1["wmae"] <= 0.8 * lag1["naive_wmae"],
               f"{lag1['wmae'] / lag1['naive_wmae']:.3f}")]  # fmt: skip
    for bucket, figures in by_lag.items():
        reference = (backtest.get(bucket) or {}).get("wmae")
        if reference:
            ratio = figures["wmae"] / reference
            checks.append(
                (f"lag {bucket} within 10% of its backtest or better", ratio <= 1.10, f"{ratio:.3f}")
            )
        checks.append((f"lag {bucket} 80% coverage 75-85%", 0.75 <= figures["coverage_80"] <= 0.85,
                       f"{figures['coverage_80']:.1%}"))  # fmt: skip
    for group in ("by_volatility_quarter", "by_size_quarter"):
        for name, quarter in result.get("scores", {}).get(group, {}).items():
            for bucket, cell in quarter["by_horizon"].items():
                held = 0.75 <= cell["coverage_80"] <= 0.85 and 0.90 <= cell["coverage_95"] <= 0.98
                checks.append((f"{group[3:]} {name}, lag {bucket}: 80% 75-85%, 95% 90-98%", held,
                               f"{cell['coverage_80']:.1%} / {cell['coverage_95']:.1%}"))  # fmt: skip
    loud = [
        a for w in result["weeks"] for a in w["alerts_opened"]
        if a["kind"] in ("drift", "degradation") and a["severity"] in ("warning", "critical")
    ]  # fmt: skip
    checks.append(("no drift or degradation alert at warning or above", not loud, str(len(loud))))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--start", default="2012-01-27")
    parser.add_argument("--weeks", type=int, default=39)
    parser.add_argument("--retrain-every", type=int, default=None)
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--forecasts", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    app = create_app({"DATABASE_URL": f"sqlite:///{work / 'replay.db'}", "MODELS_DIR": str(work / "models"),
                      "SECRET_KEY": "bench", "TESTING": True})  # fmt: skip
    storage = app.extensions["storage"]
    storage.create_all()
    dataset = load_or_generate(args.data)
    settings = ReplaySettings(
        start=pd.Timestamp(args.start).date(),
        weeks=args.weeks,
        retrain_every=args.retrain_every,
        loop=LoopSettings.from_config(app.config),
    )
    load_before = os.getloadavg()
    result = replay(storage, dataset, settings, model_name="storecast", models_dir=work / "models",
                    progress=lambda m: print(f"  … {m}", file=sys.stderr))  # fmt: skip
    load_after = os.getloadavg()

    print(f"\nreplay of {args.weeks} weeks after {args.start} on {dataset.source}")
    header = ("lag", "WMAE", "naive", "ratio", "backtest", "vs bt", "80%", "95%", "IS 80", "IS 95",
              "wQL .1", "wQL .5", "wQL .9", "bias %", "rows")  # fmt: skip
    print(" ".join(f"{h:>9}" for h in header))
    for bucket, f in result["accuracy_by_lag"].items():
        reference = (result["backtest_by_bucket"].get(bucket) or {}).get("wmae")
        vs_backtest = f["wmae"] / reference if reference else float("nan")
        cells = (
            bucket, f"{f['wmae']:,.1f}", f"{f['naive_wmae']:,.1f}", f"{f['wmae'] / f['naive_wmae']:.3f}",
            f"{reference or float('nan'):,.1f}", f"{vs_backtest:.3f}", f"{f['coverage_80']:.1%}",
            f"{f['coverage_95']:.1%}", *(_score(f.get(f"interval_score_{lv}"), ",.0f") for lv in (80, 95)),
            *(_score(f.get(f"wql_{q}"), ".4f") for q in ("0.1", "0.5", "0.9")),
            f"{100 * (f['bias_pct'] or 0):.2f}", f"{f['rows']:,}",
        )  # fmt: skip
        print(" ".join(f"{c:>9}" for c in cells))
    opened = Counter((a["kind"], a["severity"]) for w in result["weeks"] for a in w["alerts_opened"])
    print("alerts opened:", dict(opened) or "none")
    seconds = [w["seconds"] for w in result["weeks"]]
    print(f"per week: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s; "
          f"whole replay {result['seconds']:.0f} s (training included)")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    for retrain in result["retrains"]:
        print(f"retrain {retrain['week']}: {retrain['gate']}")
    print("\ntargets:")
    for what, held, figure in targets(result):
        print(f"  [{'ok' if held else 'MISSED'}] {what}: {figure}")
    if args.json_out:
        write_json(args.json_out, "bench_replay", {"data": dataset.source, **result}, load_before)
    if args.forecasts:
        with open(args.forecasts, "w", newline="") as handle:
            print(f"wrote {write_forecasts(storage, handle):,} forecasts to {args.forecasts}")


if __name__ == "__main__":
    main()
