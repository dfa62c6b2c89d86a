"""The drift reference saved with a model: what its covariates usually look like, season by season.

Raw levels are the wrong yardstick for forecast weeks: June is warmer than the training average and
CPI keeps rising. So each covariate is compared in a form that is stable when nothing is wrong:

- seasonal (temperature, markdowns on a signed log scale): the anomaly from the store's own median
  in the same weeks of the year (+-SEASON_HALF_WIDTH weeks, over every training year), in units of
  the store's anomaly spread. A season is only a reference when it was seen in MIN_SEASON_YEARS years:
  with one year, season and year cannot be told apart;
- trending (fuel_price, cpi, unemployment): how far a value lies outside the band the store's own
  history allows, the band widening by the largest yearly move seen in training per year of horizon;
- is_holiday: the calendar's holiday share of the same week of the year.

Only features-table cells (source 0) up to the training origin build it. Pure numpy: the monitoring
side (app/monitoring/drift.py) applies the same transforms to logged inputs and ingested actuals.

Format (JSON-safe, metadata["reference"]):
    {"format": FORMAT, "first_week": int, "origin_week": int, "stores": [int],
     "features": {name: {"kind": "seasonal", "log": bool, "center": [[N x 52]], "scale": [N],
                         "tolerance": [N], "sample": [z, ...]}
                        | {"kind": "trend", "low": [N], "high": [N], "move": [N], "tolerance": [N]}
                        | {"kind": "holiday", "share": [52]}},
     "prediction": {"kind": "numeric", "sample": [...], "n": int}}
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS

FORMAT = "seasonal-1"
WEEKS_PER_YEAR = 52  # the grid's "same week a year before" is 52 weeks back; the season follows it
SEASON_HALF_WIDTH = 2
MIN_SEASON_YEARS = 2
SAMPLE_SIZE = 2000
SEASONAL = ("temperature", "markdown1", "markdown2", "markdown3", "markdown4", "markdown5")
LOG_SCALED = frozenset({"markdown1", "markdown2", "markdown3", "markdown4", "markdown5"})
TRENDING = ("fuel_price", "cpi", "unemployment")
# Actual vs assumed: a store's mean gap over the compared weeks beyond this many anomaly spreads, or,
# for log-scaled features, beyond a factor LOG_TOLERANCE_FACTOR, or beyond 1.5 yearly moves (trending).
TOLERANCE_SPREADS = 2.0
LOG_TOLERANCE_FACTOR = 2.0
TREND_TOLERANCE_MOVES = 1.5
BAND_MOVES = 2.0  # the trend band widens by this many of the store's largest yearly moves per year


def slog(values: np.ndarray) -> np.ndarray:
    """Signed log1p: markdowns span five orders of magnitude and are occasionally negative."""
    values = np.asarray(values, dtype="float64")
    return np.sign(values) * np.log1p(np.abs(values))


def week_of_year(weeks: np.ndarray) -> np.ndarray:
    return np.asarray(weeks, dtype=np.int64) % WEEKS_PER_YEAR


def _season_mask(k: int) -> np.ndarray:
    """The weeks of the year within SEASON_HALF_WIDTH of week k (circular)."""
    distance = np.abs(
        (np.arange(WEEKS_PER_YEAR) - k + WEEKS_PER_YEAR // 2) % WEEKS_PER_YEAR - WEEKS_PER_YEAR // 2
    )
    return distance <= SEASON_HALF_WIDTH


def _robust_scale(values: np.ndarray, axis: int = 1) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(values, axis=axis, keepdims=True)
        return 1.4826 * np.nanmedian(np.abs(values - median), axis=axis)


def _seasonal(observed: np.ndarray, weeks: np.ndarray, log: bool, rng: np.random.Generator) -> dict:
    values = slog(observed) if log else observed
    woy = week_of_year(weeks)
    n = len(values)
    center = np.full((n, WEEKS_PER_YEAR), np.nan)
    for k in range(WEEKS_PER_YEAR):
        cols = _season_mask(k)[woy]
        block = values[:, cols]
        finite = np.isfinite(block)
        # which occurrence of this season each week belongs to: the weeks around one new year are one
        # occurrence, not two years (markdowns seen from 2011-11 only once passed for two years there)
        occurrence = (weeks[cols] - k + WEEKS_PER_YEAR // 2) // WEEKS_PER_YEAR
        years = np.array([len(np.unique(occurrence[finite[i]])) for i in range(n)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            center[:, k] = np.where(years >= MIN_SEASON_YEARS, np.nanmedian(block, axis=1), np.nan)
    anomaly = values - center[:, woy]
    scale = _robust_scale(anomaly)
    typical = np.nanmedian(scale) if np.isfinite(scale).any() else np.nan
    floor = max(0.25 * typical, 1e-3) if np.isfinite(typical) else 1e-3
    scale = np.where(
        np.isfinite(scale), np.maximum(scale, floor), typical if np.isfinite(typical) else np.nan
    )
    z = (anomaly / scale[:, None])[np.isfinite(anomaly)]
    sample = rng.choice(z, SAMPLE_SIZE, replace=False) if len(z) > SAMPLE_SIZE else z
    tolerance = np.full(n, math.log(LOG_TOLERANCE_FACTOR)) if log else TOLERANCE_SPREADS * scale
    return {
        "kind": "seasonal",
        "log": log,
        "center": _rounded(center),
        "scale": _rounded(scale),
        "tolerance": _rounded(tolerance),
        "sample": _rounded(np.sort(sample)),
    }


def _trend(observed: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(observed, axis=1), np.nanmax(observed, axis=1)
        yearly = np.abs(observed[:, WEEKS_PER_YEAR:] - observed[:, :-WEEKS_PER_YEAR])
        move = np.nanmax(yearly, axis=1) if yearly.shape[1] else np.full(len(observed), np.nan)
    move = np.where(np.isfinite(move), move, high - low)  # under a year of history: its range
    move = np.maximum(move, 1e-3 * np.maximum(np.abs(high), 1.0))
    return {
        "kind": "trend",
        "low": _rounded(low),
        "high": _rounded(high),
        "move": _rounded(move),
        "tolerance": _rounded(TREND_TOLERANCE_MOVES * move),
    }


def _holiday(holiday: np.ndarray, known: np.ndarray, weeks: np.ndarray) -> dict:
    woy = week_of_year(weeks)
    share = np.full(WEEKS_PER_YEAR, np.nan)
    for k in range(WEEKS_PER_YEAR):
        cells = known[:, woy == k]
        if cells.any():
            share[k] = float(holiday[:, woy == k][cells].mean())
    return {"kind": "holiday", "share": _rounded(share)}


def _rounded(values: np.ndarray) -> list:
    """JSON-safe: NaN as None, 5 significant decimals."""
    array = np.round(np.asarray(values, dtype="float64"), 5)
    return np.where(np.isfinite(array), array, None).tolist()


def build_reference(
    covariates: Covariates,
    origin_week: int,
    predictions: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The reference of a model at `origin_week` from its covariate grid's features-table cells."""
    rng = np.random.default_rng(seed)
    last = min(origin_week, covariates.last_week) - covariates.first_week + 1
    weeks = np.arange(covariates.first_week, covariates.first_week + last)
    values = covariates.values[:, :last].astype("float64")
    observed = np.where(covariates.source[:, :last] == 0, values, np.nan)
    features: dict[str, Any] = {}
    for j, name in enumerate(COVARIATE_COLUMNS):
        if name in SEASONAL:
            features[name] = _seasonal(observed[:, :, j], weeks, name in LOG_SCALED, rng)
        elif name in TRENDING:
            features[name] = _trend(observed[:, :, j])
    features["is_holiday"] = _holiday(
        covariates.holiday[:, :last], covariates.holiday_source[:, :last] == 0, weeks
    )
    reference: dict[str, Any] = {
        "format": FORMAT,
        "first_week": int(covariates.first_week),
        "origin_week": int(origin_week),
        "stores": [int(s) for s in covariates.stores],
        "features": features,
    }
    if predictions is not None and len(predictions):
        finite = np.asarray(predictions, dtype="float64")
        finite = finite[np.isfinite(finite)]
        sample = rng.choice(finite, SAMPLE_SIZE, replace=False) if len(finite) > SAMPLE_SIZE else finite
        reference["prediction"] = {
            "kind": "numeric",
            "sample": _rounded(np.sort(sample)),
            "n": int(len(finite)),
        }
    return reference


def store_positions(reference: dict[str, Any], stores: np.ndarray) -> np.ndarray:
    """Each store's row in the reference's arrays, -1 for stores it does not know."""
    known = np.asarray(reference["stores"], dtype=np.int64)
    stores = np.asarray(stores, dtype=np.int64)
    if not len(known):
        return np.full(len(stores), -1)
    pos = np.clip(np.searchsorted(known, stores), 0, len(known) - 1)
    return np.where(known[pos] == stores, pos, -1)


def _array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def seasonal_anomaly(
    entry: dict[str, Any], pos: np.ndarray, weeks: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Anomalies (in store spreads) from the same season's median; NaN where there is no reference."""
    center = np.array([[np.nan if v is None else v for v in row] for row in entry["center"]], dtype="float64")
    scale = _array(entry["scale"])
    x = slog(values) if entry.get("log") else np.asarray(values, dtype="float64")
    ok = pos >= 0
    out = np.full(len(x), np.nan)
    p, k = pos[ok], week_of_year(weeks[ok])
    out[ok] = (x[ok] - center[p, k]) / scale[p]
    return out


def trend_excess(
    entry: dict[str, Any], pos: np.ndarray, weeks: np.ndarray, values: np.ndarray, origin_week: int
) -> np.ndarray:
    """How far (in yearly moves) values lie outside the store's band; 0 inside, NaN for unknown stores."""
    low, high, move = _array(entry["low"]), _array(entry["high"]), _array(entry["move"])
    x = np.asarray(values, dtype="float64")
    ok = (pos >= 0) & np.isfinite(x)
    out = np.full(len(x), np.nan)
    p = pos[ok]
    years = BAND_MOVES * np.maximum(1.0, (np.asarray(weeks)[ok] - origin_week) / WEEKS_PER_YEAR)
    lo, hi = low[p] - move[p] * years, high[p] + move[p] * years
    out[ok] = (np.maximum(lo - x[ok], 0) + np.maximum(x[ok] - hi, 0)) / move[p]
    return out
