"""Honest backtest: train on sales up to an origin, forecast the next weeks, score against what
happened, beside the seasonal-naive baseline; optionally for several origins stepped back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.data import Dataset
from app.forecasting.engine import LOCAL, Engine, forecast_run
from app.forecasting.estimators import make_estimator
from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import wmae
from app.forecasting.inputs import MAX_HORIZON
from app.forecasting.intervals import BUCKET_LABELS, bucket_index
from app.forecasting.level_scores import (
    level_scores,
    level_summary,
    level_table,
    mean_of_known,
    totals_csv_frame,
)
from app.forecasting.scores import band_ranges, grouped_scores
from app.forecasting.training import MIN_HISTORY_WEEKS, train

log = logging.getLogger(__name__)
FOLD_STEP_WEEKS = 13
SCORE_KEYS = ("interval_score_80", "interval_score_95", "wql_0.1", "wql_0.5", "wql_0.9")
PREDICTION_COLUMNS = [
    "Store",
    "Dept",
    "Date",
    "IsHoliday",
    "Weekly_Sales",
    "prediction",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
]


def _scores(
    y: np.ndarray, pred: np.ndarray, hol: np.ndarray, res: pd.DataFrame | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rows": int(len(y)),
        "wmae": wmae(y, pred, hol),
        "mae": float(np.mean(np.abs(y - pred))) if len(y) else float("nan"),
    }
    if res is not None:
        out["coverage_80"] = float(np.mean((y >= res["lower_80"]) & (y <= res["upper_80"])))
        out["coverage_95"] = float(np.mean((y >= res["lower_95"]) & (y <= res["upper_95"])))
    return out


def _bucket_only_bands(fc: Forecaster, rows: pd.DataFrame, res: pd.DataFrame) -> dict[str, np.ndarray]:
    """The same forecasts with bucket-only conformal bands (one set of quantiles for every series, no
    floor): the yardstick the series-by-series bands' scores are compared to."""
    store, dept, h = rows["store"].to_numpy(), rows["dept"].to_numpy(), res["horizon"].to_numpy()
    pred = res["prediction"].to_numpy()
    out = {"prediction": pred}
    for level, name in ((0.8, "80"), (0.95, "95")):
        served = res[f"upper_{name}"].to_numpy() - pred
        half = fc.bucket_only_half_width(store, dept, h, served, level)
        out[f"lower_{name}"], out[f"upper_{name}"] = pred - half, pred + half
    return out


@dataclass
class BacktestResult:
    kind: str
    origin: pd.Timestamp
    horizon: int
    folds: list[dict[str, Any]]
    predictions: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    models: list[Any] = field(default_factory=list, repr=False)  # the Forecaster of each fold
    totals: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # totals_csv_frame's rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "origin": self.origin.date().isoformat(),
            "horizon": self.horizon,
            **self.summary,
            "folds": self.folds,
        }

    def format_table(self) -> str:
        """One table: model against the seasonal-naive baseline, mean (± spread over folds)."""
        s = self.summary

        def cell(key: str, sub: str | None = None, base: bool = False, pct: bool = False) -> str:
            vals = []
            for f in self.folds:
                src = f["baseline"] if base else f
                v = src.get(sub, {}).get(key) if sub else src.get(key)
                if v is not None and v == v:
                    vals.append(v)
            if not vals:
                return "-"
            m = float(np.mean(vals))
            text = f"{100 * m:.1f}%" if pct else f"{m:,.1f}"
            if len(vals) > 1:
                sd = float(np.std(vals))
                text += f" ± {100 * sd:.1f}" if pct else f" ± {sd:,.1f}"
            return text

        lines = [("metric", self.kind, "seasonal naive", "ratio")]

        def ratio(a: str, b: str) -> str:
            try:
                return f"{float(a.split()[0].replace(',', '')) / float(b.split()[0].replace(',', '')):.3f}"
            except (ValueError, ZeroDivisionError):
                return "-"

        for label, key, sub in (
            ("WMAE", "wmae", None),
            ("MAE", "mae", None),
            *[(f"WMAE h {b}", "wmae", f"bucket {b}") for b in BUCKET_LABELS],
            ("WMAE holiday weeks", "wmae", "holiday"),
            ("WMAE other weeks", "wmae", "other"),
        ):
            if sub and sub.startswith("bucket "):
                b = sub.split()[1]
                a = cell_bucket(self.folds, b, False)
                n = cell_bucket(self.folds, b, True)
                if a == "-":
                    continue
                lines.append((label, a, n, ratio(a, n)))
                continue
            a, n = cell(key, sub), cell(key, sub, base=True)
            lines.append((label, a, n, ratio(a, n)))
        lines.append(("coverage 80%", cell("coverage_80", pct=True), "-", ""))
        lines.append(("coverage 95%", cell("coverage_95", pct=True), "-", ""))
        scores = " / ".join(cell(k, "scores") for k in SCORE_KEYS[:2])
        lines.append(("interval score 80% / 95%", scores, "-", ""))
        wql = " / ".join(f"{mean_of_known([f['scores'][k] for f in self.folds]):.4f}" for k in SCORE_KEYS[2:])
        lines.append(("wQL 0.1 / 0.5 / 0.9", wql, "-", ""))
        if all("scores_bucket_only" in f for f in self.folds):
            plain = " / ".join(cell(k, "scores_bucket_only") for k in SCORE_KEYS[:2])
            lines.append(("interval score 80% / 95%, one set of quantiles for all series", plain, "-", ""))
        for level in (80, 95):
            lo = min(band_ranges(f["scores"], f"coverage_{level}")[0] for f in self.folds)
            hi = max(band_ranges(f["scores"], f"coverage_{level}")[1] for f in self.folds)
            span = f"{100 * lo:.1f}-{100 * hi:.1f}%"
            lines.append((f"coverage {level}% by quarter of series", span, "-", ""))
        totals = [cell(f"coverage_{lv}", "store_totals", pct=True) for lv in (80, 95)]
        lines.append(("store totals coverage 80% / 95%", " / ".join(totals), "-", ""))
        for b in BUCKET_LABELS:
            c80 = cell_bucket(self.folds, b, False, "coverage_80")
            if c80 != "-":
                c95 = cell_bucket(self.folds, b, False, "coverage_95")
                lines.append((f"coverage h {b}", f"{c80} / {c95}", "-", ""))
        lines.append(("rows", f"{s.get('rows', 0):,}", "", ""))
        lines.append(("cold-start rows", f"{s.get('cold_start_rows', 0):,}", "", ""))
        origins = ", ".join(f["origin"] for f in self.folds)
        out = [f"backtest {self.kind}: origin(s) {origins}, horizon {self.horizon} weeks"]
        out += _aligned(lines)
        out += ["", "totals by level (WMAE of the totals; ratio to the seasonal naive's totals)"]
        out += _aligned(level_table(self.summary.get("levels") or {}))
        return "\n".join(out)


def _aligned(lines: list[tuple[str, ...]] | list[list[str]]) -> list[str]:
    """Rows as text columns: the first left-aligned, the others right-aligned, a rule under the head."""
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    out = []
    for k, row in enumerate(lines):
        out.append("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(row)))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def cell_bucket(folds: list[dict], bucket: str, base: bool, key: str = "wmae") -> str:
    vals = []
    for f in folds:
        src = f["baseline"] if base else f
        v = src.get("by_bucket", {}).get(bucket, {}).get(key)
        if v is not None and v == v:
            vals.append(v)
    if not vals:
        return "-"
    m = float(np.mean(vals))
    if key.startswith("coverage"):
        return f"{100 * m:.1f}%"
    return f"{m:,.1f}" + (f" ± {float(np.std(vals)):,.1f}" if len(vals) > 1 else "")


def _forecast_rows(fc: Forecaster, rows: pd.DataFrame, horizon: int, engine: Engine) -> pd.DataFrame:
    """predict_frame's columns for `rows` (weeks after the origin). On Dask: the run of every series
    over `horizon` weeks, scored in partitions by the workers (the fitted model sent to each once), and
    joined to the rows; rows of series without history (cold starts, outside a run) in this process."""
    columns = ["prediction", "lower_80", "upper_80", "lower_95", "upper_95"]
    if engine.kind == "local":
        return fc.predict_frame(rows)
    run = forecast_run(fc, weeks=horizon, engine=engine).rename(columns={"lag": "horizon"})
    run["date"] = pd.to_datetime(run["date"])
    out = rows.merge(
        run[["store", "dept", "date", "horizon", *columns]], how="left", on=["store", "dept", "date"]
    )
    out.index = rows.index
    out["cold_start"] = False
    rest = out["prediction"].isna()
    if rest.any():
        out.loc[rest, [*columns, "horizon", "cold_start"]] = fc.predict_frame(rows[rest])[
            [*columns, "horizon", "cold_start"]
        ]
    return out[[*columns, "horizon", "cold_start"]].astype({"horizon": np.int64, "cold_start": bool})


def _fold(
    dataset: Dataset,
    origin: pd.Timestamp,
    horizon: int,
    kind: str,
    params: dict | None,
    progress,
    engine: Engine = LOCAL,
) -> tuple[dict[str, Any], pd.DataFrame, Forecaster, pd.DataFrame]:
    started = time.perf_counter()
    trained = train(dataset, kind, through=origin, progress=progress, params=params)
    train_seconds = time.perf_counter() - started
    fc = trained.forecaster
    end = origin + pd.Timedelta(weeks=horizon)
    sales = dataset.sales
    rows = sales[(sales["date"] > origin) & (sales["date"] <= end)].reset_index(drop=True)
    res = _forecast_rows(fc, rows[["store", "dept", "date"]], horizon, engine)
    naive_fc = Forecaster(
        estimator=make_estimator("naive"),
        config=fc.config,
        panel=fc.panel,
        covariates=fc.covariates,
        calibrator=fc.calibrator,
    )
    naive = naive_fc.predict_frame(rows[["store", "dept", "date"]])["prediction"].to_numpy()
    y = rows["weekly_sales"].to_numpy(float)
    hol = rows["is_holiday"].to_numpy(bool)
    pred = res["prediction"].to_numpy()
    h = res["horizon"].to_numpy()
    fold = {"origin": origin.date().isoformat(), **_scores(y, pred, hol, res)}
    fold["cold_start_rows"] = int(res["cold_start"].sum())
    fold["train_seconds"] = round(train_seconds, 2)
    fold["baseline"] = _scores(y, naive, hol)
    fold["by_bucket"], fold["baseline"]["by_bucket"] = {}, {}
    idx = bucket_index(h)
    for b, label in enumerate(BUCKET_LABELS):
        m = idx == b
        if m.any():
            fold["by_bucket"][label] = _scores(y[m], pred[m], hol[m], res[m])
            fold["baseline"]["by_bucket"][label] = _scores(y[m], naive[m], hol[m])
    for name, m in (("holiday", hol), ("other", ~hol)):
        fold[name] = _scores(y[m], pred[m], hol[m], res[m])
        fold["baseline"][name] = _scores(y[m], naive[m], hol[m])
    fold["levels"], level_frame = level_scores(fc, rows, y, res, naive)
    store = fold["levels"]["store"]
    fold["store_totals"] = {"store_weeks": store["totals"]} | {
        k: store[k] for k in ("coverage_80", "coverage_95")
    }
    bands = {k: res[k].to_numpy() for k in ("lower_80", "upper_80", "lower_95", "upper_95")}
    profile = fc.series_profile(rows["store"].to_numpy(), rows["dept"].to_numpy())
    fold["scores"] = grouped_scores(y, {"prediction": pred, **bands}, h, *profile)
    fold["scores_bucket_only"] = grouped_scores(y, _bucket_only_bands(fc, rows, res), h, *profile)
    fold["baseline_wmae"] = fold["baseline"]["wmae"]
    fold["ratio_to_baseline"] = fold["wmae"] / fold["baseline_wmae"] if fold["baseline_wmae"] else None
    frame = pd.DataFrame(
        {
            "Store": rows["store"],
            "Dept": rows["dept"],
            "Date": rows["date"].dt.strftime("%Y-%m-%d"),
            "IsHoliday": rows["is_holiday"],
            "Weekly_Sales": y,
            "prediction": pred,
            "lower_80": res["lower_80"].to_numpy(),
            "upper_80": res["upper_80"].to_numpy(),
            "lower_95": res["lower_95"].to_numpy(),
            "upper_95": res["upper_95"].to_numpy(),
        }
    )
    return fold, frame, fc, totals_csv_frame(level_frame)


def check_backtest(
    dataset: Dataset, origin: Any, horizon: int, folds: int = 1, fold_step: int = FOLD_STEP_WEEKS
) -> pd.Timestamp:
    """The origin's week, or ValueError saying why the backtest cannot run: checked before any work,
    so a mistyped origin records no failed run."""
    origin = calendar.week_ending(origin)
    horizon, folds = int(horizon), int(folds)
    if not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be 1..{MAX_HORIZON} weeks, not {horizon}")
    if folds < 1:
        raise ValueError("folds must be at least 1")
    first, last = dataset.sales["date"].min(), dataset.last_week
    if origin >= last:
        raise ValueError(f"origin {origin.date()} leaves no weeks to score: the sales end {last.date()}")
    earliest = origin - pd.Timedelta(weeks=fold_step * (folds - 1))
    weeks = (earliest - first).days // 7 + 1
    if weeks < MIN_HISTORY_WEEKS:
        raise ValueError(
            f"fold origin {earliest.date()} leaves {weeks} weeks of history (sales start {first.date()}): "
            f"a model needs at least {MIN_HISTORY_WEEKS} weeks (a year)"
        )
    return origin


def run_backtest(
    dataset: Dataset,
    origin: str | pd.Timestamp,
    horizon: int,
    kind: str = "hgb",
    folds: int = 1,
    progress: Callable[[str], None] | None = None,
    params: dict[str, Any] | None = None,
    fold_step: int = FOLD_STEP_WEEKS,
    engine: Engine = LOCAL,
) -> BacktestResult:
    """Train on sales <= origin, forecast `horizon` weeks for every row that exists in that
    window, score; `folds` > 1 repeats it for origins stepped back `fold_step` weeks each. On a Dask
    `engine` the forecasts are scored by the workers, as a published run's are."""
    origin = check_backtest(dataset, origin, horizon, folds, fold_step)
    horizon, folds = int(horizon), int(folds)
    results, frames, models, total_frames = [], [], [], []
    for k in range(folds):
        o = origin - pd.Timedelta(weeks=fold_step * k)
        if progress:
            progress(f"fold {k + 1}/{folds}: origin {o.date()}")
        fold, frame, model, total_frame = _fold(dataset, o, horizon, kind, params, progress, engine)
        total_frames.append(total_frame)
        results.append(fold)
        models.append(model)
        if folds > 1:
            frame["Origin"] = o.date().isoformat()
        frames.append(frame)
    summary: dict[str, Any] = {}
    for key in (
        "wmae",
        "mae",
        "baseline_wmae",
        "coverage_80",
        "coverage_95",
        "ratio_to_baseline",
        "train_seconds",
    ):
        vals = [f[key] for f in results if f.get(key) is not None]
        summary[key] = float(np.mean(vals)) if vals else None
    summary["rows"] = int(sum(f["rows"] for f in results))
    summary["cold_start_rows"] = int(sum(f["cold_start_rows"] for f in results))
    summary["wmae_std"] = float(np.std([f["wmae"] for f in results]))
    summary["wmae_min"] = float(min(f["wmae"] for f in results))
    summary["wmae_max"] = float(max(f["wmae"] for f in results))
    summary["by_bucket"] = {
        b: {
            k: float(np.mean([f["by_bucket"][b][k] for f in results if b in f["by_bucket"]]))
            for k in ("wmae", "coverage_80", "coverage_95")
        }
        | {
            "baseline_wmae": float(
                np.mean([f["baseline"]["by_bucket"][b]["wmae"] for f in results if b in f["by_bucket"]])
            )
        }
        for b in BUCKET_LABELS
        if any(b in f["by_bucket"] for f in results)
    }
    for name in ("scores", "scores_bucket_only"):
        summary[name] = {
            key: float(np.mean([f[name][key] for f in results]))
            for key in SCORE_KEYS
            if all(key in f[name] for f in results)
        }
    summary["store_totals"] = {
        k: mean_of_known([f["store_totals"][k] for f in results]) for k in ("coverage_80", "coverage_95")
    }
    for name in ("holiday", "other"):
        summary[name] = {
            "wmae": mean_of_known([f[name]["wmae"] for f in results]),
            "baseline_wmae": mean_of_known([f["baseline"][name]["wmae"] for f in results]),
        }
    summary["levels"] = level_summary(results)
    predictions = pd.concat(frames, ignore_index=True)
    totals_frame = pd.concat(total_frames, ignore_index=True)
    return BacktestResult(kind, origin, horizon, results, predictions, summary, models, totals_frame)
