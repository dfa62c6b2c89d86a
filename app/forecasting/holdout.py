"""The held-out weeks at the end of training: where a model is measured honestly before it is kept.

A model fitted on targets up to a cutoff forecasts the weeks after it, which it never saw. Those
forecasts choose how much of the learned correction to apply (the damping), give the backtest
figures stored with the model, and their residuals calibrate its intervals, bucket by horizon; a
model fitted just before the last weeks rescales them to the newest skill (skill_rescale).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.covariates import Covariates
from app.forecasting.data import Dataset
from app.forecasting.estimators import DAMPING_CHOICES, Estimator, make_estimator
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.forecaster import Forecaster
from app.forecasting.inputs import MAX_HORIZON
from app.forecasting.intervals import (
    BUCKET_LABELS,
    BUCKETS,
    LAG_BUCKET_LABELS,
    LAG_BUCKETS,
    REFERENCE_HORIZON,
    UNTRAINED_GROWTH_POWER,
    IntervalCalibrator,
    StoreTotals,
    bucket_index,
)
from app.forecasting.panel import Panel
from app.forecasting.scores import band_scores, grouped_scores
from app.forecasting.totals import HeldOut, Newer, fit_levels
from app.forecasting.training_set import build_training_set, has_yearly_targets

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
HOLDOUT_WEEKS = 39
BACKTEST_OFFSETS = (0, 13, 26)  # origins after the inner cutoff: damping, backtest figures, calibration
SKILL_WEEKS = 13  # the last weeks, forecast by a model fitted just before them (skill_rescale)
CALIBRATION_STEP = 4  # weeks between the calibration origins before the cutoff
CALIBRATION_HISTORY = 52 + 4  # weeks of sales an origin needs to have every feature (yoy4 looks back 56)


def truncate(panel: Panel, last_week: int) -> Panel:
    """The panel with sales up to last_week only (the leak guard of every origin)."""
    cols = max(1, last_week - panel.first_week + 1)
    return Panel(panel.store, panel.dept, panel.first_week, panel.values[:, :cols].copy())


def build_covariates(dataset: Dataset, panel: Panel, origin: int) -> Covariates:
    last_feature = (
        int(calendar.week_index(dataset.features["date"]).max()) if len(dataset.features) else origin
    )
    return Covariates.build(dataset, panel.first_week, max(origin + MAX_HORIZON, last_feature))


def fit_forecaster(
    panel: Panel,
    covariates: Covariates,
    kind: str,
    config: FeatureConfig,
    est_params: dict[str, Any],
    through: int,
    calibrator: IntervalCalibrator | None = None,
) -> tuple[Forecaster, Estimator, int]:
    """Fit an estimator on training rows with targets <= through; a Forecaster at `through`."""
    ts = build_training_set(panel, covariates, through, config)
    est = make_estimator(kind, est_params).fit(ts.X, ts.y, ts.weight)
    fc = Forecaster(
        estimator=est,
        config=config,
        panel=truncate(panel, through),
        covariates=covariates,
        calibrator=calibrator or IntervalCalibrator(),
    )
    return fc, est, len(ts.y)


def actual_rows(panel: Panel, origin: int, horizon: int) -> pd.DataFrame:
    """The store-department-weeks with sales in origin+1..origin+horizon."""
    lo = origin + 1 - panel.first_week
    hi = min(origin + horizon, panel.last_week) - panel.first_week
    if hi < lo:
        return pd.DataFrame(columns=["store", "dept", "week", "weekly_sales"])
    block = panel.values[:, lo : hi + 1]
    r, c = np.nonzero(~np.isnan(block))
    return pd.DataFrame(
        {"store": panel.store[r], "dept": panel.dept[r], "week": c + origin + 1, "weekly_sales": block[r, c]}
    )


def forecast_actuals(fc: Forecaster, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Point forecasts and interval denominators of the Forecaster for actual rows."""
    res = fc._predict_arrays(
        rows["store"].to_numpy(np.int64),
        rows["dept"].to_numpy(np.int64),
        rows["week"].to_numpy(np.int64),
        None,
    )
    return res


def servable(fc: Forecaster, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of stores with sales at the Forecaster's origin: a store without any has no level to
    forecast from (in a series sample, a store whose sampled series all start after an early origin)."""
    return rows[np.isin(rows["store"].to_numpy(np.int64), fc.stores())]


def wmae(y: np.ndarray, pred: np.ndarray, holiday: np.ndarray) -> float:
    w = np.where(holiday, 5.0, 1.0)
    return float(np.sum(w * np.abs(y - pred)) / np.sum(w)) if len(y) else float("nan")


def choose_damping(fc: Forecaster, rows: pd.DataFrame) -> tuple[float, dict[float, float]]:
    """The share of the learned correction that scores best on out-of-sample rows, and each score.

    One forecast with the whole correction and one without give every choice by interpolation.
    """
    est = fc.estimator
    y = rows["weekly_sales"].to_numpy()
    chosen = est.params.get("damping", 1.0)
    try:
        est.params["damping"] = 1.0
        full = forecast_actuals(fc, rows)
        est.params["damping"] = 0.0
        none = forecast_actuals(fc, rows)["prediction"]
    finally:
        est.params["damping"] = chosen
    hol = full["holiday"].astype(bool)
    scores = {d: wmae(y, none + d * (full["prediction"] - none), hol) for d in DAMPING_CHOICES}
    return min(scores, key=scores.__getitem__), scores


def _bucket_metrics(
    y, pred, holiday, horizon, lower80=None, upper80=None, lower95=None, upper95=None, *, by_lag: bool = False
) -> dict:
    out = {}
    buckets, labels = (LAG_BUCKETS, LAG_BUCKET_LABELS) if by_lag else (BUCKETS, BUCKET_LABELS)
    idx = bucket_index(horizon, buckets)
    for b, label in enumerate(labels):
        m = idx == b
        if not m.any():
            continue
        entry = {"rows": int(m.sum()), "wmae": wmae(y[m], pred[m], holiday[m])}
        if lower80 is not None:  # coverage, interval scores and wQL beside it
            entry.update(band_scores(y[m], pred[m], lower80[m], upper80[m], lower95[m], upper95[m]))
        out[label] = entry
    return out


def _lag_bucket_metrics(
    calibrator: IntervalCalibrator, at_origins: list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]
) -> dict[str, dict]:
    """Figures per lag bucket pooled over the internal backtest's origins: what live accuracy by lag is
    held against. One origin gives lag 1 a single week; three give it three weeks of other seasons."""

    def pooled(key: str) -> np.ndarray:
        return np.concatenate([res[key] for res, _, _ in at_origins])

    y = np.concatenate([actual for _, actual, _ in at_origins])
    naive = np.concatenate([naive for _, _, naive in at_origins])
    pred, horizon, holiday = pooled("prediction"), pooled("horizon"), pooled("holiday").astype(bool)
    bounds = calibrator.bounds(horizon, pred, pooled("denominator"), pooled("cold"), pooled("floor"))
    bands = [bounds[b] for b in ("lower_80", "upper_80", "lower_95", "upper_95")]
    return {
        "by_lag_bucket": _bucket_metrics(y, pred, holiday, horizon, *bands, by_lag=True),
        "baseline_by_lag_bucket": _bucket_metrics(y, naive, holiday, horizon, by_lag=True),
        "lag_bucket_origins": len(at_origins),
    }


def holdout_weeks(panel: Panel, config: FeatureConfig) -> int:
    """Weeks held out at the end for the internal backtest: HOLDOUT_WEEKS, or fewer in a chain's first
    year or so, as long as the inner model keeps a few training origins (under SKILL_WEEKS: too short
    for one)."""
    return min(HOLDOUT_WEEKS, panel.last_week - panel.first_week - config.min_origin_week - 4)


def calibration_origins(panel: Panel, cutoff: int) -> list[int]:
    """Origins whose forecasts of the weeks after `cutoff` calibrate the intervals, oldest first.

    The backtest origins, and every CALIBRATION_STEP weeks before the cutoff while a MAX_HORIZON-week
    forecast still reaches past it and the origin has CALIBRATION_HISTORY weeks of sales: forecasts
    from shorter histories lack features the served ones have, so their errors would overstate the
    served model's. From about 100 weeks of history the 40-52 bucket gets residuals; with less it
    borrows (intervals.py).
    """
    earliest = max(panel.first_week + CALIBRATION_HISTORY - 1, cutoff - MAX_HORIZON + 1)
    before = range(cutoff - CALIBRATION_STEP, earliest - 1, -CALIBRATION_STEP)
    after = [cutoff + off for off in BACKTEST_OFFSETS if cutoff + off < panel.last_week]
    return [*reversed(before), *after]


def internal_backtest(
    panel: Panel,
    covariates: Covariates,
    kind: str,
    config: FeatureConfig,
    est_params: dict[str, Any],
    params: dict[str, Any] | None,
    progress: Progress | None,
) -> tuple[IntervalCalibrator, dict[str, Any], np.ndarray]:
    """Step 1: an inner model fitted up to `HOLDOUT_WEEKS` before the end forecasts what it never saw.

    Chooses the damping (written into est_params), calibrates the intervals and gives the backtest's
    figures. Returns (calibrator, backtest, a sample of its predictions for the drift reference);
    an empty calibrator and backtest when the history is too short.
    """
    T = panel.last_week
    holdout = holdout_weeks(panel, config)
    cutoff = T - holdout
    calibrator = IntervalCalibrator()
    if holdout < SKILL_WEEKS:
        say(progress, "history too short for an internal backtest: intervals from training residuals")
        return calibrator, {}, np.array([])
    say(
        progress,
        f"internal backtest: fitting {kind} on sales up to {calendar.week_date(cutoff)[0].date()}",
    )
    inner_cfg = replace(config, max_rows=max(50_000, config.max_rows // 2))
    _, inner_est, _ = fit_forecaster(panel, covariates, kind, inner_cfg, est_params, cutoff)

    def inner_forecaster(origin: int, estimator: Estimator = inner_est) -> Forecaster:
        return Forecaster(
            estimator=estimator,
            config=inner_cfg,
            panel=truncate(panel, origin),
            covariates=covariates,
            calibrator=calibrator,
        )

    at_cutoff = inner_forecaster(cutoff)
    cutoff_rows = servable(at_cutoff, actual_rows(panel, cutoff, holdout))
    # The inner model chooses the damping only if it learned like the final one, from targets
    # with a year before: a first-year fit prefers applying all of its correction, which the
    # weeks after it do not bear out.
    learned_yearly = has_yearly_targets(panel, cutoff)
    if kind != "naive" and "damping" not in (params or {}) and not has_yearly_targets(panel, T, weeks=1):
        # A model that never saw a target with last year's week learned its correction for bases
        # without one, unlike every base it serves: the base alone, until the data holds such a week.
        est_params["damping"] = inner_est.params["damping"] = 0.0
        say(progress, "no target with a year before yet: damping 0 (last year's week, adjusted)")
    elif kind != "naive" and "damping" not in (params or {}) and learned_yearly:
        damping, scores = choose_damping(at_cutoff, cutoff_rows)
        inner_est.params["damping"] = est_params["damping"] = damping
        say(
            progress,
            "damping "
            + ", ".join(f"{d:g}: WMAE {v:,.1f}" for d, v in scores.items())
            + f"; chose {damping:g}",
        )
    naive = make_estimator("naive")
    resid, denom, hz, target, stores, depts, features = [], [], [], [], [], [], []
    at_origins = []  # (forecasts, actuals, naive) from the cutoff and later: the lag buckets pool them
    for o in calibration_origins(panel, cutoff):
        fc = at_cutoff if o == cutoff else inner_forecaster(o)
        rows = cutoff_rows if o == cutoff else servable(fc, actual_rows(panel, o, MAX_HORIZON))
        rows = rows[rows["week"].to_numpy() > cutoff]  # weeks the inner model never saw as targets
        res = forecast_actuals(fc, rows)
        y = rows["weekly_sales"].to_numpy()
        known = ~res["cold"]
        resid.append((y - res["prediction"])[known])
        denom.append(res["denominator"][known])
        hz.append(res["horizon"][known])
        target.append(rows["week"].to_numpy()[known])
        stores.append(rows["store"].to_numpy()[known])
        depts.append(rows["dept"].to_numpy()[known])
        features.append(res["difficulty_features"][known])
        if o < cutoff:
            continue
        at_origins.append((res, y, forecast_actuals(inner_forecaster(o, naive), rows)["prediction"]))
        if o == cutoff:
            first = (rows, res, y)
            naive_pred = at_origins[0][2]
    all_hz, all_resid, all_denom = (np.concatenate(a) for a in (hz, resid, denom))
    all_target = np.concatenate(target)
    # The bucket-only calibration (every series alike): what store totals read (intervals.py).
    plain = IntervalCalibrator().fit(all_hz, all_resid, all_denom, all_target)
    held_out = HeldOut(
        np.concatenate(stores),
        np.concatenate(depts),
        all_target,
        all_hz,
        all_resid,
        plain.bounds(all_hz, np.zeros(len(all_hz)), all_denom)["upper_80"],
    )
    calibrating = held_out.totals("store")
    # Normalised conformal: each series' scores divided by its difficulty before the quantiles, so
    # that calm series get narrow bands and volatile ones wide (intervals.fit_difficulty).
    all_features = np.concatenate(features)
    calibrator.fit_difficulty(all_hz, all_resid, all_denom, all_features)
    calibrator.fit_groups(all_hz, all_resid, all_denom, all_features)
    all_plain_denom = all_denom
    all_denom = all_denom * calibrator.difficulty(all_features, all_hz)
    for res, _, _ in at_origins:  # forecast before the difficulty was known: rescaled alike
        difficulty = calibrator.difficulty(res["difficulty_features"], res["horizon"])
        res["denominator"] = res["denominator"] * difficulty
        res["difficulty"] = difficulty
    calibrator.fit(all_hz, all_resid, all_denom, all_target)
    # A calibrating model that did not learn from targets with a year before errs unlike the final
    # one: the newer model's buckets take only part of its growth with the horizon, and none of its
    # seasons unless it had some such targets (intervals.py).
    growth_power = 1.0 if learned_yearly else UNTRAINED_GROWTH_POWER
    reference = plain_reference = None
    if has_yearly_targets(panel, cutoff, weeks=1):
        near = all_hz <= REFERENCE_HORIZON
        reference = (np.abs(all_resid[near]) / all_denom[near], all_target[near])
        plain_reference = (np.abs(all_resid[near]) / all_plain_denom[near], all_target[near])
    rescaled = skill_rescale(
        panel,
        covariates,
        kind,
        inner_cfg,
        est_params,
        calibrator,
        inner_forecaster,
        progress,
        growth_power=growth_power,
        reference=reference,
        calibrating=calibrating,
        held_out=held_out,
        plain=(plain, plain_reference),
    )
    calibrator.plain_quantiles = plain.quantiles
    if not rescaled:  # the store totals from the calibrating model alone (else the newer one's too)
        calibrator.fit_totals(calibrating)
        calibrator.level_totals = fit_levels(held_out)
    rows, res, y = first
    bounds = calibrator.bounds(
        res["horizon"], res["prediction"], res["denominator"], res["cold"], res["floor"]
    )
    hol = res["holiday"].astype(bool)

    def per_bucket(pred: np.ndarray, *, by_lag: bool, intervals: bool = True) -> dict:
        bands = [bounds[b] for b in ("lower_80", "upper_80", "lower_95", "upper_95")] if intervals else []
        return _bucket_metrics(y, pred, hol, res["horizon"], *bands, by_lag=by_lag)

    backtest = {
        "origin": calendar.week_date(cutoff)[0].date().isoformat(),
        "horizon": holdout,
        "rows": int(len(y)),
        "wmae": wmae(y, res["prediction"], hol),
        "mae": float(np.mean(np.abs(y - res["prediction"]))),
        "baseline_wmae": wmae(y, naive_pred, hol),
        "coverage_80": float(np.mean((y >= bounds["lower_80"]) & (y <= bounds["upper_80"]))),
        "coverage_95": float(np.mean((y >= bounds["lower_95"]) & (y <= bounds["upper_95"]))),
        "by_bucket": per_bucket(res["prediction"], by_lag=False),
        "baseline_by_bucket": per_bucket(naive_pred, by_lag=False, intervals=False),
        **_lag_bucket_metrics(calibrator, at_origins),
        "scores": grouped_scores(
            y,
            {"prediction": res["prediction"], **bounds},
            res["horizon"],
            *at_cutoff.series_profile(rows["store"].to_numpy(), rows["dept"].to_numpy()),
        ),
        "note": "fitted on sales up to the origin; intervals calibrated on these and later origins",
    }
    backtest["ratio_to_baseline"] = backtest["wmae"] / backtest["baseline_wmae"]
    return calibrator, backtest, res["prediction"]


def skill_rescale(
    panel: Panel,
    covariates: Covariates,
    kind: str,
    config: FeatureConfig,
    est_params: dict[str, Any],
    calibrator: IntervalCalibrator,
    inner_forecaster: Callable[[int], Forecaster],
    progress: Progress | None,
    *,
    growth_power: float,
    reference: tuple[np.ndarray, np.ndarray] | None,
    calibrating: StoreTotals,
    held_out: HeldOut,
    plain: tuple[IntervalCalibrator, tuple[np.ndarray, np.ndarray] | None],
) -> bool:
    """Scale the intervals to the skill of a model fitted 13 weeks before the end (False: the history
    is too short for it, or the model is the naive one; nothing changed).

    The calibrating model saw only sales up to 39 weeks before the end: at an origin in the data's
    second year that is a model without a single target a year after its history, and its errors
    run far larger than the final model's, so intervals calibrated on it alone come out too wide.
    A model fitted up to 13 weeks before the end is nearly the final one:
    its residuals on the last 13 weeks calibrate buckets 1-4 and 5-13, and the buckets past 13
    weeks grow from those as the older model's did: all of its growth if it learned from targets with
    a year before, part of it if not. When it had some such targets, the last 13 weeks are also
    season-matched to all of its `reference` weeks (intervals.py). The bucket-only calibration and
    its reference (`plain`) follow alike, on the scores without the difficulty.
    """
    recent = panel.last_week - SKILL_WEEKS
    if kind == "naive" or recent - panel.first_week < config.min_origin_week + 4:
        return False
    say(progress, f"interval skill: fitting {kind} on sales up to {calendar.week_date(recent)[0].date()}")
    fc, _, _ = fit_forecaster(panel, covariates, kind, config, est_params, recent, calibrator)
    rows = actual_rows(panel, recent, SKILL_WEEKS)
    new, old = forecast_actuals(fc, rows), forecast_actuals(inner_forecaster(recent), rows)
    y = rows["weekly_sales"].to_numpy()
    known = ~new["cold"] & ~old["cold"]
    resid, denominator, horizon, week = (
        (y - new["prediction"])[known],
        new["denominator"][known],
        new["horizon"][known],
        rows["week"].to_numpy()[known],
    )
    store, dept = rows["store"].to_numpy()[known], rows["dept"].to_numpy()[known]
    plain_calibrator, plain_reference = plain
    old_plain_denominator = (old["denominator"] / old["difficulty"])[known]
    # The totals' sizes are their series' bucket-only half-widths, as the served totals read them.
    old_half80 = plain_calibrator.bounds(horizon, np.zeros(len(resid)), old_plain_denominator)["upper_80"]
    calibrating_rows = HeldOut(store, dept, week, horizon, (y - old["prediction"])[known], old_half80)
    calibrator.rescale_to(
        np.abs(resid) / denominator,
        (np.abs(y - old["prediction"]) / old["denominator"])[known],
        horizon,
        growth_power,
        week,
        reference,
    )
    plain_denominator = denominator / new["difficulty"][known]
    plain_calibrator.rescale_to(
        np.abs(resid) / plain_denominator,
        np.abs(y - old["prediction"])[known] / old_plain_denominator,
        horizon,
        growth_power,
        week,
        plain_reference,
    )
    # The store totals are measured against intervals that fit these same weeks, not the season-matched
    # ones, which are narrower on November-January and would read a season as a store's lasting error.
    # The tail of their week-to-week errors pools these 13 weeks of totals with the calibrating model's.
    # As every store total reads them: its departments' bucket-only half-widths (intervals.py).
    half80 = (
        IntervalCalibrator()
        .fit(horizon, resid, plain_denominator)
        .bounds(horizon, np.zeros(len(resid)), plain_denominator)["upper_80"]
    )
    newer = HeldOut(store, dept, week, horizon, resid, half80)
    calibrator.fit_totals(newer.totals("store"), [calibrating])
    calibrator.level_totals = fit_levels(held_out, Newer(newer, calibrating_rows, growth_power))
    say(progress, f"interval skill factors {calibrator.skill_factors}")
    return True


def say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress:
        progress(message)
