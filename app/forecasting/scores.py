"""Proper scores of forecast intervals and quantiles, overall and by group of series.

Coverage alone rewards a band that is too wide: a planner stocking by a band covered 99% of the time
overstocks. The interval score (Gneiting and Raftery) charges a band its width plus a penalty for
each miss, and the weighted quantile loss (Amazon Forecast's wQL) charges each quantile its pinball
loss relative to the sales: both are lowest for bands that are as narrow as their coverage allows.

Overall figures hide groups (calm series covered nearly always, volatile ones too rarely), so every
figure is also given per quarter of series by volatility (coefficient of variation over the 52 weeks
up to the origin) and by size (mean weekly sales over those weeks), and per horizon bucket.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.forecasting.intervals import LAG_BUCKET_LABELS, LAG_BUCKETS, bucket_index

QUARTERS = ("Q1", "Q2", "Q3", "Q4")  # lowest to highest
WQL_LEVELS = (0.1, 0.5, 0.9)
PROFILE_WEEKS = 52


def interval_scores(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float) -> np.ndarray:
    """Each row's interval score of its (1 - alpha) interval: width + (2 / alpha) x the distance of a
    miss. Per row, so that stored sums of it add up over any span of weeks."""
    y, lower, upper = (np.asarray(a, dtype=float) for a in (y, lower, upper))
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def pinball_losses(y: np.ndarray, quantile: np.ndarray, tau: float) -> np.ndarray:
    """Each row's pinball loss of its `tau` quantile forecast (the wQL's numerator, halved)."""
    y, quantile = np.asarray(y, dtype=float), np.asarray(quantile, dtype=float)
    return tau * np.maximum(y - quantile, 0.0) + (1 - tau) * np.maximum(quantile - y, 0.0)


def interval_score(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float) -> float:
    """Mean interval score of (1 - alpha) intervals: width + (2 / alpha) x the distance of each miss."""
    if not len(y):
        return float("nan")
    return float(np.mean(interval_scores(y, lower, upper, alpha)))


def wql_from_sums(pinball_sum: float, actual_sum: float) -> float:
    """wQL from its sums: 2 x the summed pinball loss over the summed |sales|."""
    return float(2.0 * pinball_sum / actual_sum) if actual_sum else float("nan")


def weighted_quantile_loss(y: np.ndarray, quantile: np.ndarray, tau: float) -> float:
    """wQL at `tau`: 2 x the summed pinball loss of the quantile forecasts over the summed |sales|."""
    if not len(y):
        return float("nan")
    loss = float(np.sum(pinball_losses(y, quantile, tau)))
    return wql_from_sums(loss, float(np.sum(np.abs(np.asarray(y, dtype=float)))))


def series_profile(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per series (rows of `history`, weeks up to the origin): the coefficient of variation and the
    mean weekly sales over the last PROFILE_WEEKS weeks (NaN without two weeks of sales)."""
    tail = np.asarray(history, dtype=float)[:, -PROFILE_WEEKS:]
    count = np.sum(~np.isnan(tail), axis=1)
    enough = count >= 2
    mean = np.full(len(tail), np.nan)
    cv = np.full(len(tail), np.nan)
    if enough.any():
        t = tail[enough]
        mean[enough] = np.nanmean(t, axis=1)
        std = np.nanstd(t, axis=1, ddof=1)
        cv[enough] = std / np.maximum(np.abs(mean[enough]), 1.0)
    return cv, mean


def band_scores(
    y: np.ndarray,
    prediction: np.ndarray,
    lower_80: np.ndarray,
    upper_80: np.ndarray,
    lower_95: np.ndarray,
    upper_95: np.ndarray,
) -> dict[str, Any]:
    """Coverage, interval scores and wQL of rows whose 0.1 and 0.9 quantiles are the 80% band's ends
    and whose median is the point forecast."""
    y = np.asarray(y, dtype=float)
    if not len(y):
        return {"rows": 0}
    return {
        "rows": int(len(y)),
        "coverage_80": float(np.mean((y >= lower_80) & (y <= upper_80))),
        "coverage_95": float(np.mean((y >= lower_95) & (y <= upper_95))),
        "interval_score_80": interval_score(y, lower_80, upper_80, 0.2),
        "interval_score_95": interval_score(y, lower_95, upper_95, 0.05),
        "wql_0.1": weighted_quantile_loss(y, lower_80, 0.1),
        "wql_0.5": weighted_quantile_loss(y, prediction, 0.5),
        "wql_0.9": weighted_quantile_loss(y, upper_80, 0.9),
    }


def grouped_scores(
    y: np.ndarray,
    bands: dict[str, np.ndarray],
    horizon: np.ndarray,
    volatility: np.ndarray,
    size: np.ndarray,
) -> dict[str, Any]:
    """band_scores overall, per horizon bucket (LAG_BUCKETS), and per quarter of series by volatility
    and by size (`volatility` and `size` per row: the row's series' profile; quarters over the rows'
    distinct series), each quarter also per horizon bucket."""
    y = np.asarray(y, dtype=float)
    names = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")
    cols = [np.asarray(bands[k], dtype=float) for k in names]
    hb = bucket_index(np.asarray(horizon), LAG_BUCKETS)

    def scored(mask: np.ndarray) -> dict[str, Any]:
        return band_scores(y[mask], *(c[mask] for c in cols))

    def by_horizon(mask: np.ndarray) -> dict[str, Any]:
        return {
            label: scored(mask & (hb == b))
            for b, label in enumerate(LAG_BUCKET_LABELS)
            if (mask & (hb == b)).any()
        }

    everything = np.ones(len(y), dtype=bool)
    out: dict[str, Any] = {**scored(everything), "by_horizon": by_horizon(everything)}
    for name, values in (("volatility", volatility), ("size", size)):
        group = row_quarters(np.asarray(values, dtype=float))
        out[f"by_{name}_quarter"] = {
            label: {**scored(group == k), "by_horizon": by_horizon(group == k)}
            for k, label in enumerate(QUARTERS)
            if (group == k).any()
        }
    return out


def row_quarters(values: np.ndarray) -> np.ndarray:
    """Quarters of rows by their series' value, the quartiles taken over distinct values (one per
    series, so a long series does not weigh more than a short one)."""
    out = np.full(len(values), -1, dtype=np.int64)
    known = ~np.isnan(values)
    if known.sum() == 0:
        return out
    distinct = np.unique(values[known])
    if len(distinct) < len(QUARTERS):
        return out
    edges = np.quantile(distinct, [0.25, 0.5, 0.75])
    out[known] = np.searchsorted(edges, values[known], side="right")
    return out


def band_ranges(scores: dict[str, Any], key: str, bucket: str | None = None) -> tuple[float, float]:
    """The lowest and highest `key` over every quarter and every quarter's horizon bucket (over the
    quarters' cells of one horizon `bucket` when given)."""
    seen = []
    for group in ("by_volatility_quarter", "by_size_quarter"):
        for quarter in scores.get(group, {}).values():
            cells = quarter.get("by_horizon", {})
            if bucket is None:
                seen += [quarter[key], *(cell[key] for cell in cells.values() if key in cell)]
            elif key in cells.get(bucket, {}):
                seen.append(cells[bucket][key])
    return (min(seen), max(seen)) if seen else (float("nan"), float("nan"))
