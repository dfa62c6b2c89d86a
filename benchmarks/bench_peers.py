"""The default model against the peers a user would pick instead, on the same rows with the same scorer.

    .venv/bin/python benchmarks/bench_peers.py [--data DIR] [--origins 2012-01-27,2011-10-28,2011-07-29]
        [--horizon 39] [--models hgb,mstl,lgbm] [--lgbm-setups dropna,keep-rows,l1,l1-scaled]
        [--peers-python .venv-peers/bin/python] [--json OUT] [--smoke]

Per origin, every model is fitted on the sales up to the origin and forecasts the next `horizon`
weeks; each is scored on the rows that exist in that window (the rows of `flask backtest`) by the
project's WMAE (holiday weeks weighted 5), beside the project's seasonal naive:
- hgb: the default Storecast model, through app.forecasting.backtest.run_backtest;
- seasonal naive: the project's (52 weeks before; fallback the mean of the last 8 weeks), through the
  same backtest, with its own calibrated intervals;
- MSTL: statsforecast MSTL(season_length=52) with an AutoETS trend (its own intervals);
- LightGBM: mlforecast with lags 1-4 and 52, rolling means of lag 1 over 4 and 13 weeks, week-of-year
  and month, store/dept/type/size and the covariates of features.csv, in a few set-ups
  (LGBM_SETUPS); conformal intervals (mlforecast PredictionIntervals, 2 windows of `horizon` weeks).
Missing weeks are filled with 0 up to the origin (positional lags misalign otherwise). A row a peer
gives no number for (a series with no history before the origin, a NaN) takes the seasonal naive's
and is counted. The peers run in benchmarks/peers_worker.py under their own interpreter
(--peers-python, default .venv-peers/bin/python, else this one): requirements-peers.txt needs
pandas < 3, the app pandas 3.1. Peers whose packages that interpreter lacks are reported as skipped.
Prints one table (WMAE, ratio to naive, 80%/95% coverage, time to fit and forecast) and the load
average at start and end; the time includes the models' own internal backtests (hgb) or conformal
windows (LightGBM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.forecasting.backtest import run_backtest  # noqa: E402
from app.forecasting.data import COVARIATE_COLUMNS, Dataset  # noqa: E402
from app.forecasting.holdout import wmae
from app.forecasting.synthetic import generate_dataset, load_or_generate  # noqa: E402
from benchmarks._results import write_json  # noqa: E402
from benchmarks._table import format_table, percent  # noqa: E402
from benchmarks.peers_worker import LGBM_PARAMS, LGBM_SETUPS, PACKAGES  # noqa: E402

log = logging.getLogger("bench_peers")

ORIGINS = ("2012-01-27", "2011-10-28", "2011-07-29")
KEYS = ["store", "dept", "date"]
BANDS = ("lower_80", "upper_80", "lower_95", "upper_95")
ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "benchmarks" / "peers_worker.py"
SMOKE_HGB = {"max_iter": 20}  # the smoke run checks the plumbing, not the model: seconds, not a minute


@dataclass
class Forecast:
    """One model's numbers for the scored rows, in their order (intervals NaN where it gives none)."""

    prediction: np.ndarray
    seconds: float
    bands: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""


def history_frame(dataset: Dataset, origin: pd.Timestamp) -> pd.DataFrame:
    """Sales up to the origin in the long format of the Nixtla libraries (unique_id, ds, y), each
    series on a regular weekly grid from its first week to the origin, missing weeks as 0 (lags taken
    by position misalign otherwise), with its store's statics and covariates of the week."""
    sales = dataset.sales[dataset.sales["date"] <= origin]
    wide = sales.pivot_table(index=["store", "dept"], columns="date", values="weekly_sales")
    wide = wide.reindex(columns=pd.date_range(wide.columns.min(), origin, freq="W-FRI"))
    started = wide.notna().cumsum(axis=1) > 0
    long = wide.fillna(0.0).where(started).stack().dropna().rename("y").reset_index()
    long.columns = ["store", "dept", "ds", "y"]
    long["unique_id"] = series_id(long["store"], long["dept"])
    stores = dataset.stores.assign(type_code=dataset.stores["type"].map({"A": 0, "B": 1, "C": 2}))
    long = long.merge(stores[["store", "size", "type_code"]], on="store")
    return long.merge(covariates(dataset), on=["store", "ds"], how="left")


def covariates(dataset: Dataset) -> pd.DataFrame:
    """features.csv by store and week; a markdown not recorded is taken as none run (0)."""
    cov = dataset.features[["store", "date", *COVARIATE_COLUMNS, "is_holiday"]].rename(columns={"date": "ds"})
    markdowns = [c for c in COVARIATE_COLUMNS if c.startswith("markdown")]
    cov[markdowns] = cov[markdowns].fillna(0.0)
    cov["is_holiday"] = cov["is_holiday"].astype(int)
    return cov


def future_frame(dataset: Dataset, history: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """The covariates of the forecast weeks for every series (mlforecast's X_df)."""
    series = history[["unique_id", "store"]].drop_duplicates()
    weeks = pd.DataFrame({"ds": pd.date_range(origin + pd.Timedelta(weeks=1), periods=horizon, freq="W-FRI")})
    future = series.merge(weeks, how="cross").merge(covariates(dataset), on=["store", "ds"], how="left")
    return future.drop(columns="store")


def series_id(store: pd.Series, dept: pd.Series) -> pd.Series:
    return store.astype(str) + "_" + dept.astype(str)


def peers_python(explicit: str | None) -> str:
    """The interpreter of the peers: --peers-python, else the repository's .venv-peers, else this one."""
    if explicit:
        return explicit
    own = ROOT / ".venv-peers" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def missing_packages(python: str) -> dict[str, list[str]]:
    """Per peer, the packages its interpreter lacks (all of them if the interpreter does not run)."""
    try:
        done = subprocess.run([python, str(WORKER), "check"], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        log.warning("peers interpreter %s unusable: %s", python, exc)
        return {peer: list(packages) for peer, packages in PACKAGES.items()}


def peer_forecast(
    python: str, model: str, setup: str, inputs: Path, rows: pd.DataFrame, horizon: int, smoke: bool
) -> Forecast:
    """Run one peer in its interpreter and align its forecasts with the scored rows."""
    out = inputs / f"{model}-{setup}.csv"
    command = [python, str(WORKER), "run", "--model", model, "--setup", setup, "--horizon", str(horizon)]
    command += [
        "--history",
        str(inputs / "history.csv"),
        "--future",
        str(inputs / "future.csv"),
        "--out",
        str(out),
    ]
    done = subprocess.run(command + (["--smoke"] if smoke else []), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{model} {setup} failed:\n{done.stderr[-3000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    forecasts = pd.read_csv(out, parse_dates=["ds"])
    keyed = pd.DataFrame({"unique_id": series_id(rows["store"], rows["dept"]), "ds": rows["date"]})
    merged = keyed.merge(forecasts, on=["unique_id", "ds"], how="left")
    bands = {b: merged[b].to_numpy(float) for b in BANDS if b in merged}
    return Forecast(merged["prediction"].to_numpy(float), info["seconds"], bands, info["note"])


def score(rows: pd.DataFrame, fc: Forecast, fallback: np.ndarray) -> dict[str, Any]:
    """WMAE and coverage of one model on the scored rows (its gaps filled with the naive's numbers)."""
    y = rows["weekly_sales"].to_numpy(float)
    hol = rows["is_holiday"].to_numpy(bool)
    gaps = np.isnan(fc.prediction)
    pred = np.where(gaps, fallback, fc.prediction)
    out: dict[str, Any] = {"wmae": wmae(y, pred, hol), "rows": len(y), "filled_rows": int(gaps.sum())}
    for level in ("80", "95"):
        lo, hi = fc.bands.get(f"lower_{level}"), fc.bands.get(f"upper_{level}")
        out[f"coverage_{level}"] = None if lo is None else float(np.mean((y >= lo) & (y <= hi)))
    out["seconds"] = round(fc.seconds, 1)
    if fc.note:
        out["note"] = fc.note
    return out


def backtest_forecast(
    dataset: Dataset, origin: pd.Timestamp, horizon: int, kind: str, params: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, Forecast]:
    """The project's backtest of one kind: the scored rows and its numbers for them."""
    started = time.perf_counter()
    bt = run_backtest(dataset, origin, horizon, kind=kind, params=params)
    seconds = time.perf_counter() - started
    p = bt.predictions
    rows = pd.DataFrame(
        {
            "store": p["Store"],
            "dept": p["Dept"],
            "date": pd.to_datetime(p["Date"]),
            "weekly_sales": p["Weekly_Sales"],
            "is_holiday": p["IsHoliday"].astype(bool),
        }
    )
    bands = {b: p[b].to_numpy(float) for b in BANDS}
    return rows, Forecast(p["prediction"].to_numpy(float), seconds, bands)


def run_origin(
    dataset: Dataset,
    origin: pd.Timestamp,
    horizon: int,
    models: list[str],
    setups: list[str],
    python: str,
    smoke: bool,
) -> dict[str, Any]:
    """Every model at one origin, scored on the rows of the project's backtest."""
    rows, naive = backtest_forecast(dataset, origin, horizon, "naive")
    log.info("%s: %d rows; seasonal naive in %.1f s", origin.date(), len(rows), naive.seconds)
    result: dict[str, Any] = {
        "rows": len(rows),
        "models": {"seasonal naive": score(rows, naive, naive.prediction)},
    }
    if "hgb" in models:
        fc = _same_rows(
            rows, *backtest_forecast(dataset, origin, horizon, "hgb", SMOKE_HGB if smoke else None)
        )
        result["models"]["hgb"] = score(rows, fc, naive.prediction)
    peers = [("mstl", "-", "MSTL + AutoETS")] if "mstl" in models else []
    peers += [("lgbm", s, f"LightGBM {s}") for s in setups] if "lgbm" in models else []
    lacking = missing_packages(python) if peers else {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp)
        if any(not lacking[model] for model, _, _ in peers):
            history = history_frame(dataset, origin)
            history.to_csv(inputs / "history.csv", index=False)
            future_frame(dataset, history, origin, horizon).to_csv(inputs / "future.csv", index=False)
        for model, setup, name in peers:
            if lacking[model]:
                result["models"][name] = {"skipped": f"not installed: {', '.join(lacking[model])}"}
                continue
            fc = peer_forecast(python, model, setup, inputs, rows, horizon, smoke)
            result["models"][name] = score(rows, fc, naive.prediction)
    base = result["models"]["seasonal naive"]["wmae"]
    for name, m in result["models"].items():
        if "wmae" in m:
            m["ratio"] = m["wmae"] / base if base else None
        log.info("%s %s: %s", origin.date(), name, m)
    return result


def _same_rows(rows: pd.DataFrame, other: pd.DataFrame, fc: Forecast) -> Forecast:
    """The backtests of two kinds score the same rows in the same order; fail loudly if not."""
    if not rows[KEYS].reset_index(drop=True).equals(other[KEYS].reset_index(drop=True)):
        raise RuntimeError("the backtests scored different rows")
    return fc


def best_setup(results: dict[str, dict[str, Any]]) -> str | None:
    """The LightGBM set-up with the lowest mean ratio to naive over the origins."""
    ratios: dict[str, list[float]] = {}
    for res in results.values():
        for name, m in res["models"].items():
            if name.startswith("LightGBM") and m.get("ratio") is not None:
                ratios.setdefault(name, []).append(m["ratio"])
    return min(ratios, key=lambda k: float(np.mean(ratios[k]))) if ratios else None


def table(results: dict[str, dict[str, Any]], best: str | None) -> list[list[str]]:
    out = [["origin", "model", "WMAE", "/ naive", "80% covered", "95% covered", "fit+forecast s", "rows"]]
    for origin, res in results.items():
        for name, m in res["models"].items():
            label = f"{name} (best)" if name == best else name
            if "skipped" in m:
                out.append([origin, label, m["skipped"]])
                continue
            filled = f" ({m['filled_rows']:,} naive)" if m["filled_rows"] else ""
            out.append(
                [
                    origin,
                    label,
                    f"{m['wmae']:,.1f}",
                    f"{m['ratio']:.3f}",
                    percent(m["coverage_80"]),
                    percent(m["coverage_95"]),
                    f"{m['seconds']:.1f}",
                    f"{m['rows']:,}{filled}",
                ]
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=None, help="the Kaggle files' directory (default: synthetic data)")
    parser.add_argument("--origins", default=",".join(ORIGINS))
    parser.add_argument("--horizon", type=int, default=39)
    parser.add_argument("--models", default="hgb,mstl,lgbm", help="besides the seasonal naive")
    parser.add_argument("--peers-python", default=None, help="interpreter with requirements-peers.txt")
    parser.add_argument("--lgbm-setups", default=",".join(LGBM_SETUPS))
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic data, one origin, 8 weeks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_start = os.getloadavg()
    if args.smoke:
        dataset = generate_dataset(seed=0, n_stores=2, n_depts=3)
        origins, horizon, setups = [ORIGINS[0]], 8, ["l1-scaled"]
    else:
        dataset = load_or_generate(args.data)
        origins, horizon = args.origins.split(","), args.horizon
        setups = [s for s in args.lgbm_setups.split(",") if s]
    unknown = set(setups) - set(LGBM_SETUPS)
    if unknown:
        parser.error(f"unknown LightGBM set-ups: {', '.join(sorted(unknown))}")
    models = [m for m in args.models.split(",") if m]
    python = peers_python(args.peers_python)
    print(f"data: {dataset.source}, {len(dataset.sales):,} sales rows; horizon {horizon} weeks")
    print(f"load average at start: {' / '.join(f'{v:.2f}' for v in load_start)} (1 / 5 / 15 min)", flush=True)
    results = {
        o: run_origin(dataset, pd.Timestamp(o), horizon, models, setups, python, args.smoke) for o in origins
    }
    best = best_setup(results)
    load_end = os.getloadavg()
    print(format_table(table(results, best)))
    if best:
        name = best.split(" ", 1)[1]
        print(f"best LightGBM set-up (lowest mean ratio over the origins): {name} {LGBM_SETUPS[name]}")
    print(f"load average at end: {' / '.join(f'{v:.2f}' for v in load_end)} (1 / 5 / 15 min)")
    if args.json:
        figures = {
            "data": dataset.source,
            "horizon": horizon,
            "load_average_start": load_start,
            "load_average_end": load_end,
            "peers_python": python,
            "lgbm_params": LGBM_PARAMS,
            "lgbm_setups": {s: LGBM_SETUPS[s] for s in setups},
            "best_lgbm_setup": best,
            "origins": results,
        }
        write_json(args.json, "bench_peers", figures, load_start)


if __name__ == "__main__":
    main()
