"""The promotion gate's comparison: a candidate and production scored on the same weeks.

Each artifact's stored backtest is at its own origin (HOLDOUT_WEEKS before the end of its training
data), so two models trained through different dates were scored on different weeks: their WMAEs
are not comparable. The gate scores both loaded artifacts instead, without refitting, on the weeks
neither has seen: from origins at or after the later of their training ends (13 weeks apart, as the
backtest's folds), each model rolled forward to the origin's history as it would serve, on exactly
the same rows, beside the seasonal naive on those rows. When the data holds no such weeks, the
stored backtests are compared only if they scored the same window (same origin, horizon and rows);
otherwise the two are not compared, and the result says why.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.artifacts import load_forecaster
from app.forecasting.backtest import FOLD_STEP_WEEKS
from app.forecasting.data import Dataset
from app.forecasting.estimators import make_estimator
from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import HOLDOUT_WEEKS, actual_rows, forecast_actuals, servable, wmae
from app.forecasting.panel import Panel

log = logging.getLogger(__name__)


def _day(week: int) -> str:
    return calendar.week_date(week)[0].date().isoformat()


def _result(
    candidate: str,
    production: str,
    basis: str,
    origins: list[str],
    weeks: tuple[str, str],
    rows: int,
    scores: tuple[float, float, float],
) -> dict[str, Any]:
    wmae_c, wmae_p, naive = scores
    worse_by = wmae_c / wmae_p - 1 if wmae_p > 0 else 0.0
    ratio_c = wmae_c / naive if naive > 0 else float("nan")
    ratio_p = wmae_p / naive if naive > 0 else float("nan")
    span = f"{origins[0]}" if len(origins) == 1 else f"{len(origins)} origins {origins[0]}..{origins[-1]}"
    where = f"on the same weeks {weeks[0]}..{weeks[1]} from {span} ({rows:,} forecasts, {basis})"
    verdict = f"{abs(worse_by):.1%} {'worse' if worse_by > 0 else 'better'}" if worse_by else "as good"
    return {
        "comparable": True,
        "version": candidate,
        "production": production,
        "basis": basis,
        "origins": origins,
        "weeks": list(weeks),
        "rows": rows,
        "wmae": wmae_c,
        "production_wmae": wmae_p,
        "naive_wmae": naive,
        "ratio_to_naive": ratio_c,
        "production_ratio_to_naive": ratio_p,
        "worse_by": worse_by,
        "worse": worse_by > 0,
        "message": (
            f"{candidate} is {verdict} than production {production} {where}: WMAE {wmae_c:,.0f} "
            f"({ratio_c:.3f}x seasonal naive) against {wmae_p:,.0f} ({ratio_p:.3f}x)"
        ),
    }


def _not_compared(candidate: str, production: str, why: str) -> dict[str, Any]:
    return {
        "comparable": False,
        "version": candidate,
        "production": production,
        "worse": False,
        "message": f"{candidate} and production {production} were not compared: {why}",
    }


def stored(candidate: dict[str, Any], production: dict[str, Any]) -> dict[str, Any]:
    """The stored backtests compared when they scored the same window of the same data."""
    label, prod = candidate["label"], production["label"]
    mine, theirs = candidate.get("metrics") or {}, production.get("metrics") or {}
    if candidate.get("data_lineage") and candidate.get("data_lineage") != production.get("data_lineage"):
        return _not_compared(label, prod, "they were trained on other data")
    keys = ("origin", "horizon", "rows")
    figures = ("wmae", "baseline_wmae")
    if not all(isinstance(m.get(f), (int, float)) for m in (mine, theirs) for f in figures):
        return _not_compared(label, prod, "a backtest figure is missing")
    if any(mine.get(key) != theirs.get(key) for key in keys):
        return _not_compared(
            label,
            prod,
            f"their backtests scored different weeks (from {mine.get('origin')} and from "
            f"{theirs.get('origin')}) and the data holds no week after both trainings",
        )
    origin = pd.Timestamp(mine["origin"])
    weeks = (
        (origin + pd.Timedelta(weeks=1)).date().isoformat(),
        (origin + pd.Timedelta(weeks=int(mine["horizon"]))).date().isoformat(),
    )
    naive = float(theirs["baseline_wmae"])
    return _result(
        label,
        prod,
        "their stored backtests",
        [mine["origin"]],
        weeks,
        int(mine["rows"]),
        (float(mine["wmae"]), float(theirs["wmae"]), naive),
    )


def _rolled(forecaster: Forecaster, sales: pd.DataFrame, origin: int) -> Forecaster:
    """The model at `origin` without refitting: the weeks after its own origin join its history."""
    known = sales[
        (sales["date"] > calendar.week_date(forecaster.origin_week)[0])
        & (sales["date"] <= calendar.week_date(origin)[0])
    ]
    return forecaster.with_history(known[["store", "dept", "date", "weekly_sales"]])


def held_out(
    dataset: Dataset,
    candidate: Forecaster,
    production: Forecaster,
    labels: tuple[str, str],
    *,
    max_weeks: int = HOLDOUT_WEEKS,
) -> dict[str, Any]:
    """Both models scored on the weeks of `dataset` after the later of their training ends."""
    label, prod = labels
    seen = max(candidate.origin_week, production.origin_week)
    panel = Panel.from_sales(dataset.sales)
    end = min(panel.last_week, seen + max_weeks)
    if end <= seen:
        return _not_compared(
            label,
            prod,
            f"{label} saw sales through {_day(candidate.origin_week)}, {prod} through "
            f"{_day(production.origin_week)}, and the data ends {_day(panel.last_week)}: "
            "no week is held out from both",
        )
    y_all, c_all, p_all, n_all, h_all, origins = [], [], [], [], [], []
    for origin in range(seen, end, FOLD_STEP_WEEKS):
        rolled_c = _rolled(candidate, dataset.sales, origin)
        rolled_p = _rolled(production, dataset.sales, origin)
        rows = servable(rolled_p, servable(rolled_c, actual_rows(panel, origin, end - origin)))
        if rows.empty:
            continue
        naive = Forecaster(
            estimator=make_estimator("naive"),
            config=rolled_p.config,
            panel=rolled_p.panel,
            covariates=rolled_p.covariates,
            calibrator=rolled_p.calibrator,
        )
        res_p = forecast_actuals(rolled_p, rows)
        c_all.append(forecast_actuals(rolled_c, rows)["prediction"])
        p_all.append(res_p["prediction"])
        n_all.append(forecast_actuals(naive, rows)["prediction"])
        h_all.append(res_p["holiday"].astype(bool))
        y_all.append(rows["weekly_sales"].to_numpy(float))
        origins.append(_day(origin))
    if not origins:
        return _not_compared(label, prod, "no store has sales at the held-out origins")
    y, hol = np.concatenate(y_all), np.concatenate(h_all)
    scores = tuple(wmae(y, np.concatenate(pred), hol) for pred in (c_all, p_all, n_all))
    return _result(
        label,
        prod,
        "both models rolled forward without refitting",
        origins,
        (_day(seen + 1), _day(end)),
        len(y),
        scores,  # type: ignore[arg-type]
    )


def compare(candidate: dict[str, Any], production: dict[str, Any], dataset: Dataset | None) -> dict[str, Any]:
    """The most honest comparison available: held-out weeks of `dataset`, else identical stored windows.

    `candidate` and `production` are registry rows (versions.version_to_dict).
    """
    labels = (candidate["label"], production["label"])
    if candidate.get("data_lineage") and candidate.get("data_lineage") != production.get("data_lineage"):
        return _not_compared(*labels, "they were trained on other data")
    if dataset is not None and production.get("data_lineage") in (None, dataset.lineage()):
        try:
            first, second = (
                load_forecaster(row["artifact_path"], expected_sha256=row["artifact_sha256"])
                for row in (candidate, production)
            )
        except Exception as error:  # noqa: BLE001 - an unreadable artifact leaves the stored figures
            log.warning("cannot load the artifacts to compare: %s", error)
        else:
            result = held_out(dataset, first, second, labels)
            if result["comparable"]:
                return result
            fallback = stored(candidate, production)
            return fallback if fallback["comparable"] else result
    return stored(candidate, production)
