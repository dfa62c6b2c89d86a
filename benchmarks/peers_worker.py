"""The peers of bench_peers.py, run in their own environment (requirements-peers.txt: pandas < 3).

    .venv-peers/bin/python benchmarks/peers_worker.py check
    .venv-peers/bin/python benchmarks/peers_worker.py run --model mstl|lgbm [--setup NAME] --horizon 39
        --history h.csv [--future f.csv] --out forecasts.csv [--smoke]

bench_peers.py writes the history (unique_id, ds, y, statics, covariates; a regular weekly grid up to
the origin) and the future covariates, and reads back one row per series and week:
unique_id, ds, prediction and the interval bounds the model gives. `run` prints one JSON line with the
seconds spent fitting and forecasting (reading and writing excluded). Imports nothing of the app, whose
pinned pandas the peers' packages do not accept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

SEASON = 52
PACKAGES = {"mstl": ("statsforecast",), "lgbm": ("mlforecast", "lightgbm")}
STATIC = ["store", "dept", "size", "type_code"]
# What a competent user would try with mlforecast and LightGBM: its defaults first (dropna=True drops
# the rows without a year-before lag), then keeping those rows, then a loss that matches the metric
# with the holiday weights, then per-series scaling so one model serves series of very different sizes.
LGBM_SETUPS: dict[str, dict[str, Any]] = {
    "dropna": {"dropna": True, "objective": "l2", "weighted": False, "scaled": False},
    "keep-rows": {"dropna": False, "objective": "l2", "weighted": False, "scaled": False},
    "l1": {"dropna": False, "objective": "l1", "weighted": True, "scaled": False},
    "l1-scaled": {"dropna": False, "objective": "l1", "weighted": True, "scaled": True},
}
LGBM_PARAMS = {"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 63, "min_child_samples": 50}
SMOKE_LGBM = {"n_estimators": 30}
LEVELS = [80, 95]


def missing() -> dict[str, list[str]]:
    """Per peer, the packages this interpreter lacks."""
    return {
        peer: [p for p in packages if importlib.util.find_spec(p) is None]
        for peer, packages in PACKAGES.items()
    }


def bounds(out: pd.DataFrame, alias: str) -> pd.DataFrame:
    """The Nixtla output renamed to prediction and lower/upper_80/95 (the bounds it has)."""
    names = {alias: "prediction"}
    for level in LEVELS:
        names |= {f"{alias}-lo-{level}": f"lower_{level}", f"{alias}-hi-{level}": f"upper_{level}"}
    out = out.reset_index() if "unique_id" not in out.columns else out
    return out[["unique_id", "ds", *[c for c in names if c in out.columns]]].rename(columns=names)


def mstl(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """statsforecast MSTL(52) with an AutoETS trend, as its documentation sets it up; Naive where it fails."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, Naive

    sf = StatsForecast(
        models=[MSTL(season_length=SEASON, trend_forecaster=AutoETS(model="ZZN"), alias="MSTL")],
        freq="W-FRI",
        n_jobs=os.cpu_count() or 1,
        fallback_model=Naive(),
    )
    return bounds(sf.forecast(df=history[["unique_id", "ds", "y"]], h=horizon, level=LEVELS), "MSTL")


def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    """ISO week (pandas dropped DatetimeIndex.week)."""
    return pd.DatetimeIndex(dates).isocalendar().week.to_numpy(np.int32)


def lgbm(
    history: pd.DataFrame, future: pd.DataFrame, horizon: int, setup: dict[str, Any], smoke: bool
) -> tuple[pd.DataFrame, str]:
    """mlforecast + LightGBM, recursive: lags 1-4 and 52, rolling means of lag 1, calendar, covariates.

    Conformal intervals from two windows of `horizon` weeks; without intervals (and said so) when the
    history is too short for them."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import LocalStandardScaler
    from mlforecast.utils import PredictionIntervals

    if setup["weighted"]:
        history = history.assign(weight=np.where(history["is_holiday"] == 1, 5.0, 1.0))
    params = {**LGBM_PARAMS, **(SMOKE_LGBM if smoke else {})}
    model = lgb.LGBMRegressor(objective=setup["objective"], n_jobs=os.cpu_count() or 1, verbose=-1, **params)
    mlf = MLForecast(
        models={"lgbm": model},
        freq="W-FRI",
        lags=[1, 2, 3, 4, SEASON],
        lag_transforms={1: [RollingMean(window_size=4), RollingMean(window_size=13)]},
        date_features=[week_of_year, "month"],
        target_transforms=[LocalStandardScaler()] if setup["scaled"] else None,
    )
    fit_args: dict[str, Any] = {"static_features": STATIC, "dropna": setup["dropna"]}
    if setup["weighted"]:
        fit_args["weight_col"] = "weight"
    note, levels = "", LEVELS
    try:
        mlf.fit(history, prediction_intervals=PredictionIntervals(n_windows=2, h=horizon), **fit_args)
    except ValueError as exc:  # too little history for the conformal windows at an early origin
        note, levels = f"no intervals: {exc}", None
        mlf.fit(history, **fit_args)
    return bounds(mlf.predict(h=horizon, X_df=future, level=levels), "lgbm"), note


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="print the missing packages per peer as JSON")
    run = sub.add_parser("run")
    run.add_argument("--model", choices=sorted(PACKAGES), required=True)
    run.add_argument("--setup", default="l1-scaled", help="a LightGBM set-up (ignored by mstl)")
    run.add_argument("--horizon", type=int, required=True)
    run.add_argument("--history", required=True)
    run.add_argument("--future")
    run.add_argument("--out", required=True)
    run.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "check":
        sys.stdout.write(json.dumps(missing()) + "\n")
        return
    history = pd.read_csv(args.history, parse_dates=["ds"])
    started = time.perf_counter()
    note = ""
    if args.model == "mstl":
        out = mstl(history, args.horizon)
    else:
        future = pd.read_csv(args.future, parse_dates=["ds"])
        out, note = lgbm(history, future, args.horizon, LGBM_SETUPS[args.setup], args.smoke)
    seconds = time.perf_counter() - started
    out.to_csv(args.out, index=False)
    sys.stdout.write(json.dumps({"seconds": seconds, "note": note}) + "\n")


if __name__ == "__main__":
    main()
