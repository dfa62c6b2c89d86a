"""Forecaster benchmark: accuracy, training time, artifact size and latency, default model vs RF.

    .venv/bin/python benchmarks/bench_forecaster.py [--data DIR] [--origin 2012-01-27] [--horizon 39]
        [--repeats 7] [--kinds hgb,rf] [--skip-full-train rf]

Per kind: a backtest (train on sales <= origin, forecast `horizon` weeks, WMAE vs seasonal naive,
coverage by bucket); a training on all rows (time, artifact size); in-process latency medians of
one row, 1,000 rows, a 52-week forecast of one store-department and a 39-week forecast of a
whole store (time.perf_counter, after one warm-up call). Prints one table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.forecasting.artifacts import load_forecaster  # noqa: E402
from app.forecasting.backtest import run_backtest  # noqa: E402
from app.forecasting.synthetic import load_or_generate  # noqa: E402
from app.forecasting.training import TrainedModel, save_model, train
from benchmarks._results import load_average, write_json  # noqa: E402
from benchmarks._table import format_table  # noqa: E402

log = logging.getLogger("bench_forecaster")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "walmart"


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def latencies(fc, repeats: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    stores = fc.stores()
    store = stores[0]
    dept = fc.departments(store)[0]
    start = fc.origin + pd.Timedelta(weeks=1)
    one = [{"store": store, "dept": dept, "date": start.date().isoformat()}]
    pairs = [(s, d) for s in stores for d in fc.departments(s)]
    pick = rng.integers(0, len(pairs), 1000)
    many = [
        {
            "store": pairs[k][0],
            "dept": pairs[k][1],
            "date": (start + pd.Timedelta(weeks=int(h))).date().isoformat(),
        }
        for k, h in zip(pick, rng.integers(0, 52, 1000), strict=True)
    ]
    return {
        "one_row_ms": median_ms(lambda: fc.predict_rows(one), repeats * 5),
        "rows_1000_ms": median_ms(lambda: fc.predict_rows(many), repeats),
        "series_52w_ms": median_ms(lambda: fc.forecast(store, dept, start, 52), repeats * 3),
        "store_39w_ms": median_ms(lambda: fc.forecast_store(store, start, 39), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA) if (DEFAULT_DATA / "train.csv").exists() else None
    )
    parser.add_argument("--origin", default="2012-01-27")
    parser.add_argument("--horizon", type=int, default=39)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--kinds", default="hgb,rf")
    parser.add_argument(
        "--skip-full-train", default="", help="kinds whose latency/size use the backtest model"
    )
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    load_start = load_average()
    dataset = load_or_generate(args.data)
    print(f"data: {dataset.source}, {len(dataset.sales):,} sales rows")
    figures: dict[str, dict] = {}
    skip = set(filter(None, args.skip_full_train.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            f: dict = {}
            t = time.perf_counter()
            bt = run_backtest(dataset, args.origin, args.horizon, kind=kind)
            f["backtest_seconds"] = time.perf_counter() - t
            f.update(
                {
                    k: bt.summary[k]
                    for k in ("wmae", "mae", "baseline_wmae", "coverage_80", "coverage_95", "rows")
                }
            )
            f["by_bucket"] = bt.summary["by_bucket"]
            f["backtest_train_seconds"] = bt.folds[0]["train_seconds"]
            if kind in skip:
                trained_fc, f["train_all_seconds"] = bt.models[0], None
                info = save_model(TrainedModel(trained_fc, trained_fc.metadata), tmp, name=kind)
            else:
                t = time.perf_counter()
                trained = train(dataset, kind)
                f["train_all_seconds"] = time.perf_counter() - t
                info = save_model(trained, tmp, name=kind)
            f["artifact_mb"] = info.path.stat().st_size / 1e6
            fc = load_forecaster(info.path, info.sha256)
            f.update(latencies(fc, args.repeats))
            figures[kind] = f
            print(
                f"{kind}: {json.dumps({k: v for k, v in f.items() if k != 'by_bucket'}, default=str)}",
                flush=True,
            )
    kinds = list(figures)
    rows = [
        ("WMAE", "wmae", "{:,.1f}"),
        ("seasonal naive WMAE", "baseline_wmae", "{:,.1f}"),
        ("coverage 80%", "coverage_80", "{:.1%}"),
        ("coverage 95%", "coverage_95", "{:.1%}"),
        ("train (backtest fit) s", "backtest_train_seconds", "{:.1f}"),
        ("train on all rows s", "train_all_seconds", "{:.1f}"),
        ("artifact MB", "artifact_mb", "{:.2f}"),
        ("1 row ms", "one_row_ms", "{:.2f}"),
        ("1,000 rows ms", "rows_1000_ms", "{:.1f}"),
        ("52 weeks, 1 series ms", "series_52w_ms", "{:.2f}"),
        ("39 weeks, 1 store ms", "store_39w_ms", "{:.1f}"),
    ]
    header = ["metric", *kinds] + ([f"{kinds[0]}/{kinds[1]}"] if len(kinds) > 1 else [])
    table = [header]
    for label, key, fmt in rows:
        vals = [figures[k].get(key) for k in kinds]
        line = [label] + [fmt.format(v) if v is not None else "-" for v in vals]
        if len(kinds) > 1:
            line.append(f"{vals[0] / vals[1]:.3f}" if vals[0] is not None and vals[1] else "-")
        table.append(line)
    for k in kinds:
        table.append(
            [f"{k} WMAE / naive", f"{figures[k]['wmae'] / figures[k]['baseline_wmae']:.3f}"]
            + [""] * (len(header) - 2)
        )
    for k in kinds:
        for b, v in figures[k]["by_bucket"].items():
            table.append(
                [
                    f"{k} h {b}",
                    f"WMAE {v['wmae']:,.0f} (naive {v['baseline_wmae']:,.0f})",
                    f"cov {v['coverage_80']:.1%} / {v['coverage_95']:.1%}",
                ]
                + [""] * (len(header) - 3)
            )
    print(format_table(table))
    if args.json:
        write_json(args.json, "bench_forecaster", {"data": dataset.source, **figures}, load_start)


if __name__ == "__main__":
    main()
