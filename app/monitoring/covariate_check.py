"""Each store's arriving covariates against that store's own history: a broken feed caught the week it lands.

The drift check pools every store, so three stores' temperatures far off their season move no pooled
distribution. Here each store's arriving value is compared with what that store itself makes likely:

- temperature: the store's own season (the same weeks a year before), plus the change every store saw
  since (the chain's median), so a warm spring in the whole chain is no finding;
- fuel price, CPI, unemployment: the store's own level over weeks 5-13 before, plus the chain's median
  change since (a reference the first weeks of a broken feed do not reach).

A value is off when it is further from that than 1.5 times the largest 0.1% of such gaps in the model's
training weeks, for the column (so the limit follows the data, not a constant). A value equal to the
week before to the last digit is stuck, for columns whose stores practically never repeat (temperature,
CPI); an empty value where the store sent one the week before, while most stores still send it, is
missing. One warning per covariate names its stores, the values and what was expected; it closes when
the stores' values are back.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from app.forecasting import calendar
from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS
from app.monitoring import alerts

log = logging.getLogger(__name__)

KIND = "covariates"
CHECKED = ("temperature", "fuel_price", "cpi", "unemployment")
SEASONAL = {"temperature"}
LEVEL_WEEKS = (5, 13)  # the weeks before that make a store's level
SEASON_WEEKS = (51, 53)  # a year before, one week either side
LIMIT_QUANTILE = 0.999
LIMIT_FACTOR = 1.5  # the clean 2012 weeks reach 1.15 times the training weeks' 0.1% gap (temperature)
STUCK_RATE = 0.005  # columns repeated less often than this in training can be stuck
PRESENT_SHARE = 0.5  # a column most stores sent this week is expected from every store


def _observed(grid: Covariates, column: str) -> np.ndarray:
    c = COVARIATE_COLUMNS.index(column)
    values = grid.values[:, :, c].astype(float)
    return np.where(grid.source[:, :, c] == 0, values, np.nan)


def _reference(history: np.ndarray, t: int, column: str) -> np.ndarray:
    """What each store's value at week position t is expected to be, before the chain's common change."""
    lo, hi = SEASON_WEEKS if column in SEASONAL else LEVEL_WEEKS
    cols = [t - k for k in range(lo, hi + 1) if 0 <= t - k < history.shape[1]]
    if not cols:
        return np.full(history.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a store with none of those weeks: NaN
        return np.nanmedian(history[:, cols], axis=1)


def _gaps(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    diff = x - reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        common = np.nanmedian(diff) if np.isfinite(diff).any() else 0.0
    return diff - common


def column_limits(grid: Covariates, column: str, through: int) -> dict[str, float]:
    """The column's limit on a gap and its repeat rate, from the training weeks up to position `through`."""
    history = _observed(grid, column)[:, : through + 1]
    lo = SEASON_WEEKS[1] if column in SEASONAL else LEVEL_WEEKS[1]
    gaps = [np.abs(_gaps(history[:, t], _reference(history, t, column))) for t in range(lo, history.shape[1])]
    flat = np.concatenate(gaps) if gaps else np.array([])
    flat = flat[np.isfinite(flat)]
    limit = LIMIT_FACTOR * float(np.quantile(flat, LIMIT_QUANTILE)) if len(flat) else float("inf")
    pairs = ~np.isnan(history[:, 1:]) & ~np.isnan(history[:, :-1])
    repeats = float(np.mean(history[:, 1:][pairs] == history[:, :-1][pairs])) if pairs.any() else 1.0
    return {"limit": limit, "repeat_rate": repeats}


def covariate_findings(
    grid: Covariates, arriving: pd.DataFrame, week: dt.date, trained_through: dt.date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per column, the stores whose arriving value is off, stuck or missing in `week`."""
    rows = arriving[pd.to_datetime(arriving["date"]) == pd.Timestamp(week)]
    t = int(calendar.week_index([week])[0]) - grid.first_week
    if rows.empty or not 0 < t < grid.values.shape[1]:
        return {}
    origin = t - 1
    if trained_through is not None:
        origin = int(calendar.week_index([trained_through])[0]) - grid.first_week
    pos = grid.store_pos(rows["store"].to_numpy(np.int64))
    ok = pos >= 0
    found: dict[str, list[dict[str, Any]]] = {}
    for column in CHECKED:
        history = _observed(grid, column)
        x = np.full(len(grid.stores), np.nan)
        sent = np.zeros(len(grid.stores), dtype=bool)
        x[pos[ok]] = rows[column].to_numpy(float)[ok]
        sent[pos[ok]] = True
        limits = column_limits(grid, column, min(origin, t - 1))
        reference = _reference(history, t, column)
        gap = _gaps(x, reference)
        expected = x - gap
        before = history[:, t - 1]
        present = sent & ~np.isnan(x)
        issues = []
        for i in np.flatnonzero(sent):
            store = int(grid.stores[i])
            if np.isnan(x[i]):
                if not np.isnan(before[i]) and present.sum() >= PRESENT_SHARE * sent.sum():
                    issues.append({"store": store, "mode": "missing", "previous": float(before[i])})
            elif limits["repeat_rate"] < STUCK_RATE and x[i] == before[i]:
                issues.append({"store": store, "mode": "stuck", "value": float(x[i])})
            elif np.isfinite(gap[i]) and abs(gap[i]) > limits["limit"]:
                issues.append(
                    {
                        "store": store,
                        "mode": "off",
                        "value": float(x[i]),
                        "expected": round(float(expected[i]), 3),
                        "limit": round(limits["limit"], 3),
                    }
                )
        if issues:
            found[column] = issues
    return found


def _issue_text(column: str, issue: dict[str, Any]) -> str:
    store = issue["store"]
    if issue["mode"] == "missing":
        return f"store {store} sent none (it sent {issue['previous']:g} the week before)"
    if issue["mode"] == "stuck":
        return f"store {store} stuck at {issue['value']:g}, the week before's value to the last digit"
    lo, hi = issue["expected"] - issue["limit"], issue["expected"] + issue["limit"]
    return f"store {store} {issue['value']:g} against about {issue['expected']:g} (normal {lo:g} to {hi:g})"


def check_covariates(
    session: Session,
    grid: Covariates,
    arriving: pd.DataFrame,
    week: dt.date,
    trained_through: dt.date | None = None,
) -> dict[str, Any]:
    """Open one warning per broken covariate naming its stores; resolve the covariates that are back."""
    found = covariate_findings(grid, arriving, week, trained_through)
    for column, issues in found.items():
        stores = [i["store"] for i in issues]
        listed = "; ".join(_issue_text(column, i) for i in issues[:8])
        more = f"; and {len(issues) - 8} more" if len(issues) > 8 else ""
        message = (
            f"{column} of store{'s' if len(stores) > 1 else ''} {', '.join(map(str, stores[:20]))} "
            f"off its own history in the week of {week.isoformat()}: {listed}{more}. A broken feed?"
        )
        details = {
            "column": column,
            "week": week.isoformat(),
            "stores": stores,
            "issues": issues[:50],
            "url": f"/store?store={stores[0]}",
        }
        store = stores[0] if len(stores) == 1 else None
        alerts.open_alert(session, KIND, "warning", message, details, key=column, store=store)
    for alert in alerts.open_alerts(session, KIND):
        key = str((alert.details or {}).get("key", ""))
        if key not in found:
            alerts.resolve_kind(session, KIND, key)
    return {"columns": sorted(found), "stores": sorted({i["store"] for v in found.values() for i in v})}
