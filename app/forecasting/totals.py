"""Totals above a series, at every level of the chain: the whole chain, a department across stores,
a store across departments.

A total's forecast is the sum of its series' forecasts, added in whole cents, so that it equals what
a planner gets by adding up the series' served figures, and a chain total equals its departments'.

A total's size is the sum of its series' bucket-only 80% half-widths (Forecaster.bucket_only_half_width:
every series alike, without its difficulty), never of the served ones: those are scaled by each series'
difficulty and floored at 0, so their sum would move with the mix of calm and volatile series rather
than with the total's error. Calibration (held-out rows, holdout.py) and serving (the `half80` column
sum_totals reads) use that same size, so the conformal quantiles mean the same thing at both ends.

The chain's and a department's intervals are calibrated on totals of their own level, not built from
their series' intervals: the series of a chain or a department err together (a holiday misjudged, a
region's weather), so adding their intervals as independent errors would be far too narrow and adding
them as one error far too wide. The held-out forecasts that calibrate the series' intervals are summed
per level, key, origin and week; each total's error over its size is a score, and the split-conformal
quantile of those scores per horizon bucket and level (IntervalCalibrator.fit, which borrows a bucket's
quantiles from the nearest bucket with enough totals) scales a served total's size into its half-width.
As the series' intervals do, they then follow the model fitted just before the last weeks (fit_levels).
The chain has one total per origin and week, so some of its buckets borrow; `fallbacks` records where.
Its newer model's last weeks give it too few totals for quantiles of their own, yet ignoring them left
the chain on the calibrating model alone, which at an origin in the data's second year never learned
from a target a year on and errs far more than the model served: the chain's bands came out so wide
that every week fell inside them. So a level with too few newer totals is scaled by how much smaller
its newer totals' scores are on average than the calibrating model's on the same weeks (a mean of a
dozen ratios is steady where a quantile of them is not), its shape across buckets and levels kept.

Departments differ in how far their totals stray from their size: the stores of a seasonal department
miss together, those of a grocery aisle mostly cancel. One quantile for every department left the
calm ones' 95% bands several times their 80% ones and covering every week, and the volatile ones'
covering fewer than four weeks in five. So each department's scores are divided by its own difficulty
(key_difficulty: how much larger than other departments' its scores ran, on the same held-out
totals) before the quantiles are taken, and a served total's half-width is multiplied back by it.

A store's total keeps the lasting-and-steady model (IntervalCalibrator.total_half_width: its
departments' half-widths in quadrature, plus the spread across stores of their lasting error, measured
apart from the week-to-week one) rather than its level's quantiles. On the real data's earliest
origins, where the calibrating model is weakest and the held-out weeks fewest, a pooled quantile of
store-week scores left store totals well short of their nominal coverage, while the lasting-and-steady
model held it at every origin the backtest checks. The store level's quantiles are still fitted
(fit_levels) and kept beside the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting.intervals import (
    BUCKETS,
    MIN_BUCKET_ROWS,
    IntervalCalibrator,
    StoreTotals,
    bucket_index,
    bucket_label,
)

LEVELS = ("chain", "department", "store")
LEVEL_NAMES = {"chain": "whole chain", "department": "department across stores", "store": "store"}
# The horizon buckets a planner reads totals' accuracy by: next week, this month, quarter, half, year.
REPORT_BUCKETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 4), (5, 13), (14, 26), (27, 39), (40, 52))
REPORT_BUCKET_LABELS = [str(lo) if lo == hi else bucket_label(lo, hi) for lo, hi in REPORT_BUCKETS]
BAND_COLUMNS = ("lower_80", "upper_80", "lower_95", "upper_95")
MIN_SKILL_TOTALS = 8  # newer totals a level needs to be scaled by their mean score (fit_levels)
BY_KEY = ("department",)  # levels whose keys each get their own difficulty (key_difficulty)
KEY_SHRINK_TOTALS = 30  # a key with this many calibrating totals keeps half of its own difficulty
DIFFICULTY_QUANTILE = 0.8  # the quantile of a key's scores its difficulty is read from
# Fewer held-out totals than this in a level (the chain: one a week and origin), and its 95% quantile is
# about its few largest scores: a single week the calibrating model misjudged made the chain's 95% band
# five times its 80% one. Such a level keeps its own 80% quantiles and takes its 95% ones at the ratio
# TAIL_SOURCE's totals, with thousands of them, show between the two in each bucket.
MIN_TAIL_TOTALS = 400
TAIL_SOURCE = "department"


def level_key(level: str, store: np.ndarray, dept: np.ndarray) -> np.ndarray:
    """The key of each row's total at `level`: 0 for the chain, the department, or the store."""
    if level == "chain":
        return np.zeros(len(store), dtype=np.int64)
    if level == "department":
        return np.asarray(dept, dtype=np.int64)
    if level == "store":
        return np.asarray(store, dtype=np.int64)
    raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")


def report_bucket(horizon: np.ndarray) -> np.ndarray:
    """The label of each horizon among REPORT_BUCKETS."""
    return np.array(REPORT_BUCKET_LABELS)[bucket_index(horizon, REPORT_BUCKETS)]


def in_cents(values: np.ndarray) -> np.ndarray:
    """Dollar amounts as whole cents, the unit totals are added in."""
    return np.round(np.asarray(values, dtype=float) * 100).astype(np.int64)


@dataclass(frozen=True)
class HeldOut:
    """Held-out forecasts of series: their store, department, target week, weeks ahead, error and their
    bucket-only 80% half-width (the sample a level's totals are calibrated on)."""

    store: np.ndarray
    dept: np.ndarray
    week: np.ndarray
    horizon: np.ndarray
    residual: np.ndarray
    half80: np.ndarray

    def totals(self, level: str) -> StoreTotals:
        """This sample's totals at `level`: one per key, origin and target week."""
        key = level_key(level, self.store, self.dept)
        return StoreTotals.of_rows(key, self.week, self.horizon, self.residual, self.half80)


@dataclass(frozen=True)
class Newer:
    """A newer model's held-out forecasts of the last weeks (holdout.skill_rescale), and the
    calibrating model's forecasts of the same rows, each with its own half-widths."""

    rows: HeldOut
    calibrating_rows: HeldOut
    growth_power: float = 1.0


def _scores(sample: HeldOut, level: str, difficulty: dict[int, float]) -> tuple[np.ndarray, ...]:
    """|total error| / total size of a sample's totals at `level`, each over its key's `difficulty`
    (key_difficulty; none known: 1), the first week of their bucket, and their keys."""
    totals = sample.totals(level)
    score = np.abs(totals.error) / totals.size / _of_keys(difficulty, totals.key)
    return score, np.array([lo for lo, _ in BUCKETS])[totals.bucket], totals.key


def key_difficulty(score: np.ndarray, first_week: np.ndarray, key: np.ndarray) -> dict[int, float]:
    """Per key, how much larger its totals' scores run than every key's: the DIFFICULTY_QUANTILE of its
    scores over their bucket's median, against the same quantile over all keys, shrunk toward 1 when
    it has few totals (KEY_SHRINK_TOTALS keeps half of it, in log terms). A department whose stores
    err together has totals far off their size; one whose stores' errors cancel has totals close to
    their forecast. A quantile, not a mean: the departments differ in their tails as well."""
    if not len(score):
        return {}
    score = pd.Series(score)
    ratio = score / score.groupby(first_week).transform("median").clip(lower=1e-12)
    log_ratio = np.log(ratio.clip(1e-3, 1e3))
    typical = float(log_ratio.quantile(DIFFICULTY_QUANTILE))  # a typical key, or one not seen: 1
    by_key = log_ratio.groupby(np.asarray(key))
    own, count = by_key.quantile(DIFFICULTY_QUANTILE), by_key.size()
    kept = count / (count + KEY_SHRINK_TOTALS)
    return {int(k): round(float(np.exp((own[k] - typical) * kept[k])), 6) for k in own.index}


def fit_levels(calibrating: HeldOut, newer: Newer | None = None) -> dict[str, dict[str, Any]]:
    """Per level, the conformal quantiles of |total error| / total size by horizon bucket on the
    calibrating model's totals; with a `newer` model's, they follow it as the series' intervals do
    (IntervalCalibrator.rescale_to): the buckets its totals fill take their quantiles, the later ones
    grow from those as the calibrating model's did (to `growth_power`). A level with too few newer
    totals for that (the chain: one a week) is scaled by their mean score over the calibrating model's
    on the same weeks (see the module docstring)."""
    fitted = {}
    for level in LEVELS:
        if not len(calibrating.store):
            continue
        score, first_week, key = _scores(calibrating, level, {})
        difficulty = key_difficulty(score, first_week, key) if level in BY_KEY else {}
        cal = IntervalCalibrator().fit(first_week, score / _of_keys(difficulty, key), np.ones(len(score)))
        if newer is not None and len(newer.rows.store):
            new_score, new_week, _ = _scores(newer.rows, level, difficulty)
            old_score, _, _ = _scores(newer.calibrating_rows, level, difficulty)
            if len(new_score) >= MIN_BUCKET_ROWS:
                cal.rescale_to(new_score, old_score, new_week, newer.growth_power)
            elif len(new_score) >= MIN_SKILL_TOTALS and np.mean(old_score) > 0:
                _scale(cal, float(np.mean(new_score) / np.mean(old_score)))
        fitted[level] = {
            "quantiles": cal.quantiles,
            "counts": cal.counts,
            "fallbacks": cal.fallbacks,
            "skill_factors": cal.skill_factors,
            "difficulty": difficulty,
        }
    source = fitted.get(TAIL_SOURCE)
    for f in fitted.values():
        if source is not None and f is not source and sum(f["counts"].values()) < MIN_TAIL_TOTALS:
            f["quantiles"] = _borrowed_tail(f["quantiles"], source["quantiles"])
            f["tail_from"] = TAIL_SOURCE
    return fitted


def _borrowed_tail(quantiles: dict[str, dict[str, float]], source: dict[str, dict[str, float]]) -> dict:
    """`quantiles` with each bucket's 95% one its 80% one times the `source` level's ratio of the two in
    that bucket (see MIN_TAIL_TOTALS)."""
    return {
        b: {**q, "0.95": q["0.8"] * source[b]["0.95"] / max(source[b]["0.8"], 1e-12)} if b in source else q
        for b, q in quantiles.items()
    }


def _of_keys(difficulty: dict[int, float], key: np.ndarray) -> np.ndarray:
    """Each key's difficulty (key_difficulty; 1 for a key it does not know, or none fitted)."""
    return pd.Series(np.asarray(key)).map(difficulty).fillna(1.0).to_numpy(float)


def _scale(cal: IntervalCalibrator, factor: float) -> None:
    """Every quantile of `cal` times `factor`, recorded as its skill factor at both levels."""
    cal.quantiles = {b: {lv: v * factor for lv, v in q.items()} for b, q in cal.quantiles.items()}
    cal.skill_factors = {lv: round(factor, 4) for lv in ("0.8", "0.95")}


def half_widths(
    calibrator: IntervalCalibrator,
    level: str,
    size: np.ndarray,
    quadrature: np.ndarray,
    horizon: np.ndarray,
    key: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The 80% and 95% half-widths of totals at `level` from their size (their series' bucket-only 80%
    half-widths summed), their `quadrature`, `horizon` and `key` (a department's own difficulty).
    Store totals, and totals of a level the model was calibrated without (made before levels were, or
    on too short a history), take the lasting-and-steady model (see the module docstring)."""
    fitted = None if level == "store" else (getattr(calibrator, "level_totals", None) or {}).get(level)
    horizon = np.asarray(horizon, dtype=np.int64)
    out = {}
    for lv in ("0.8", "0.95"):
        if fitted:
            labels = list(fitted["quantiles"])
            q = np.array([fitted["quantiles"][label][lv] for label in labels])
            own = _of_keys(fitted.get("difficulty") or {}, np.zeros(len(horizon)) if key is None else key)
            out[lv] = q[bucket_index(horizon)] * np.asarray(size, dtype=float) * own
        else:
            out[lv] = calibrator.lasting_and_steady(
                np.atleast_1d(size), np.atleast_1d(quadrature), horizon, float(lv)
            )
    return {"80": out["0.8"], "95": out["0.95"]}


def sum_totals(level: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Totals at `level` of forecast rows (store, dept, date, horizon, prediction and half80, each
    row's bucket-only 80% half-width; an `actual` column is summed too): one row per key, date and
    horizon (rows of several origins keep their horizons apart), in that order, with the total's
    prediction (added in cents), size and quadrature of its rows' half80."""
    key = level_key(level, rows["store"].to_numpy(), rows["dept"].to_numpy())
    half = rows["half80"].to_numpy(float)
    frame = pd.DataFrame(
        {
            "key": key,
            "date": rows["date"].to_numpy(),
            "horizon": rows["horizon"].to_numpy(np.int64),
            "cents": in_cents(rows["prediction"].to_numpy(float)),
            "size": half,
            "square": half**2,
            "series": 1,
        }
    )
    if "actual" in rows:
        frame["actual"] = rows["actual"].to_numpy(float)
    sums = {"cents": "sum", "size": "sum", "square": "sum", "series": "sum"}
    if "actual" in frame:
        sums["actual"] = "sum"
    out = frame.groupby(["key", "date", "horizon"], sort=True).agg(sums).reset_index()
    out["prediction"] = out.pop("cents") / 100
    out["quadrature"] = np.sqrt(out.pop("square"))
    return out


def with_bounds(calibrator: IntervalCalibrator, level: str, totals: pd.DataFrame) -> pd.DataFrame:
    """`totals` (sum_totals) with their calibrated 80% and 95% bounds."""
    half = half_widths(
        calibrator,
        level,
        totals["size"].to_numpy(float),
        totals["quadrature"].to_numpy(float),
        totals["horizon"].to_numpy(np.int64),
        totals["key"].to_numpy(np.int64),
    )
    out = totals.copy()
    p = out["prediction"].to_numpy(float)
    for name in ("80", "95"):
        out[f"lower_{name}"] = p - half[name]
        out[f"upper_{name}"] = p + half[name]
    return out


def level_totals(calibrator: IntervalCalibrator, level: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Totals at `level` of forecast rows, with their calibrated intervals (see sum_totals)."""
    return with_bounds(calibrator, level, sum_totals(level, rows))
