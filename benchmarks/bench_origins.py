"""Backtest at several origins: accuracy, interval coverage (rows, horizon buckets, totals by level) and
the proper scores of the intervals and quantiles, overall and by quarter of series.

    .venv/bin/python benchmarks/bench_origins.py [--data DIR] [--origins 2012-01-27,2011-10-28,2011-07-29]
        [--horizon 39] [--kind hgb] [--params '{"christmas_shift": false}'] [--json OUT] [--smoke]

Per origin: the model of `--kind` (default hgb, the default model; any of estimators.KINDS) trained
on sales up to the origin (`run_backtest`, the same code as `flask backtest`) forecasts every row of
the next `horizon` weeks (its progress logged with the time); WMAE (holiday weeks x5) beside the
seasonal naive, coverage of the 80% and 95% intervals over all rows, per horizon bucket, and on
store totals (each store's departments summed per week, with the interval the forecaster gives a
store total); then, per level (the chain, each department across stores, each store) and horizon
bucket, the totals' WMAE beside the seasonal naive's totals and their 80% and 95% coverage; the
interval scores of both bands and the weighted quantile loss at 0.1, 0.5 and 0.9, overall, per horizon
bucket and per quarter of series by volatility and by size (scores.py).
`--params` overrides pipeline or model settings, so that one run measures one variant.
`--smoke` runs one origin on a small synthetic dataset, for the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.forecasting.backtest import run_backtest  # noqa: E402
from app.forecasting.estimators import KINDS  # noqa: E402
from app.forecasting.forecaster import Forecaster  # noqa: E402
from app.forecasting.holdout import wmae  # noqa: E402
from app.forecasting.level_scores import level_table  # noqa: E402
from app.forecasting.scores import WQL_LEVELS, band_ranges  # noqa: E402
from app.forecasting.synthetic import generate_dataset, load_or_generate  # noqa: E402
from benchmarks._results import write_json  # noqa: E402
from benchmarks._table import format_table, percent  # noqa: E402

log = logging.getLogger("bench_origins")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "walmart"
ORIGINS = ("2012-01-27", "2011-10-28", "2011-07-29")


def without_christmas_shift(fc: Any, frame: pd.DataFrame) -> dict[str, float] | None:
    """WMAE of the same fitted model with the Christmas shift of the bases turned off at prediction
    time: the shift's whole effect where the model never trained on a December with a year before."""
    if not fc.config.christmas_shift:
        return None
    plain = Forecaster(
        estimator=fc.estimator,
        config=replace(fc.config, christmas_shift=False),
        panel=fc.panel,
        covariates=fc.covariates,
        calibrator=fc.calibrator,
    )
    rows = pd.DataFrame(
        {"store": frame["Store"], "dept": frame["Dept"], "date": pd.to_datetime(frame["Date"])}
    )
    pred = plain.predict_frame(rows)["prediction"].to_numpy()
    y, hol = frame["Weekly_Sales"].to_numpy(), frame["IsHoliday"].to_numpy(bool)
    december = pd.to_datetime(frame["Date"]).dt.month.to_numpy() == 12
    return {
        "wmae": wmae(y, pred, hol),
        "december_wmae": wmae(y[december], pred[december], hol[december]) if december.any() else None,
        "december_wmae_with_shift": (
            wmae(y[december], frame["prediction"].to_numpy()[december], hol[december])
            if december.any()
            else None
        ),
    }


def measure(
    dataset: Any, origin: str, horizon: int, params: dict | None, kind: str = "hgb"
) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_backtest(dataset, origin, horizon, kind=kind, params=params, progress=log.info)
    fold, frame, fc = result.folds[0], result.predictions, result.models[0]
    return {
        "christmas_shift_off": without_christmas_shift(fc, frame),
        "origin": fold["origin"],
        "rows": fold["rows"],
        "wmae": fold["wmae"],
        "naive_wmae": fold["baseline_wmae"],
        "ratio": fold["ratio_to_baseline"],
        "coverage_80": fold["coverage_80"],
        "coverage_95": fold["coverage_95"],
        "by_bucket": fold["by_bucket"],
        "store_totals": fold["store_totals"],
        "levels": fold["levels"],
        "scores": fold["scores"],
        "scores_bucket_only": fold["scores_bucket_only"],
        "train_seconds": fold["train_seconds"],
        "seconds": round(time.perf_counter() - started, 1),
        "load_after": os.getloadavg(),
    }


def quarter_ranges(scores: dict[str, Any]) -> str:
    """The lowest and highest coverage over the volatility and size quarters and their horizon buckets."""
    lo80, hi80 = band_ranges(scores, "coverage_80")
    lo95, hi95 = band_ranges(scores, "coverage_95")
    return f"{percent(lo80)}-{percent(hi80)} / {percent(lo95)}-{percent(hi95)}"


def _plain_scores(r: dict[str, Any]) -> str:
    """The interval scores of one set of quantiles for every series on the same forecasts ("-" in a
    result written before they were measured)."""
    plain = r.get("scores_bucket_only")
    if not plain:
        return "-"
    return f"{plain['interval_score_80']:,.0f} / {plain['interval_score_95']:,.0f}"


def table(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = [
        [
            "origin",
            "WMAE",
            "naive",
            "ratio",
            "cov 80",
            "cov 95",
            "buckets 80 (min-max)",
            "totals 80/95",
            "quarters 80 / 95 (min-max)",
            "IS 80 / 95",
            "IS 80 / 95, one set",
            "wQL .1/.5/.9",
            "train s",
            "ratio, no Xmas shift",
        ]
    ]
    for r in results:
        b80 = [b["coverage_80"] for b in r["by_bucket"].values()]
        b95 = [b["coverage_95"] for b in r["by_bucket"].values()]
        rows.append(
            [
                r["origin"],
                f"{r['wmae']:,.1f}",
                f"{r['naive_wmae']:,.1f}",
                f"{r['ratio']:.3f}",
                percent(r["coverage_80"]),
                percent(r["coverage_95"]),
                f"{percent(min(b80))}-{percent(max(b80))} / {percent(min(b95))}-{percent(max(b95))}",
                f"{percent(r['store_totals']['coverage_80'])} / {percent(r['store_totals']['coverage_95'])}",
                quarter_ranges(r["scores"]),
                f"{r['scores']['interval_score_80']:,.0f} / {r['scores']['interval_score_95']:,.0f}",
                _plain_scores(r),
                "/".join(f"{r['scores'][f'wql_{q}']:.4f}" for q in WQL_LEVELS),
                f"{r['train_seconds']:.0f}",
                f"{r['christmas_shift_off']['wmae'] / r['naive_wmae']:.3f}"
                if r["christmas_shift_off"]
                else "-",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA) if (DEFAULT_DATA / "train.csv").exists() else None
    )
    parser.add_argument("--origins", default=",".join(ORIGINS))
    parser.add_argument("--horizon", type=int, default=39)
    parser.add_argument("--kind", default="hgb", choices=KINDS, help="the model to backtest")
    parser.add_argument("--params", default=None, help="JSON object of pipeline/model settings")
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", action="store_true", help="one origin on a small synthetic dataset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)  # the backtest's progress, timed
    params = json.loads(args.params) if args.params else None
    if args.smoke:
        dataset = generate_dataset(seed=0, n_stores=2, n_depts=3)
        origins, horizon = [str(dataset.last_week.date() - pd.Timedelta(weeks=13))], 13
        params = {"max_rows": 3_000, "max_iter": 10, "origin_step": 8, **(params or {})}
    else:
        dataset = load_or_generate(args.data)
        origins, horizon = args.origins.split(","), args.horizon
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}", flush=True)
    results = [measure(dataset, o, horizon, params, args.kind) for o in origins]
    load_end = os.getloadavg()
    print(format_table(table(results)))
    for r in results:
        print(f"\ntotals by level at {r['origin']} (WMAE of the totals; ratio to the naive's totals)")
        print(format_table(level_table(r["levels"])))
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    if args.json:
        out = {"data": dataset.source, "kind": args.kind, "params": params, "load_start": load_start,
               "load_end": load_end, "origins": results}  # fmt: skip
        write_json(args.json, "bench_origins", out, load_start)


if __name__ == "__main__":
    main()
