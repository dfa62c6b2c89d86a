"""Training: fit a model on history up to a date, measure it honestly, calibrate its intervals.

train() does three things with the same feature pipeline:
1. an internal backtest (holdout.py): a model fitted on targets up to `through - 39 weeks` forecasts the weeks
   after that cutoff, which it never saw as targets. From the cutoff and two later origins (13
   and 26 weeks on), the forecasts choose how much of the learned correction to apply (the
   damping) and give the metadata's backtest figures; with those from origins every 4 weeks
   before the cutoff (calibration_origins), their residuals calibrate the intervals, so that the
   buckets far out (27-39 and 40-52 weeks) are calibrated on their own forecasts;
2. a refit on everything up to `through`, applied with that damping;
3. the metadata: features, window, fingerprint, drift reference (reference.py), importances.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from app.forecasting import calendar
from app.forecasting.artifacts import ArtifactInfo, write_artifact
from app.forecasting.data import COVARIATE_COLUMNS, Dataset
from app.forecasting.estimators import KINDS, Estimator, make_estimator
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.features import FEATURE_NAMES, FEATURES
from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import Progress, build_covariates, internal_backtest, say
from app.forecasting.inputs import MAX_HORIZON
from app.forecasting.intervals import (
    interval_denominator,
)
from app.forecasting.metadata import ModelMetadata
from app.forecasting.panel import Panel, sample_series
from app.forecasting.reference import build_reference
from app.forecasting.training_set import build_training_set

log = logging.getLogger(__name__)
MIN_HISTORY_WEEKS = 52  # a year of sales: the seasonal naive and the yearly lags exist from here


@dataclass
class TrainedModel:
    forecaster: Forecaster
    metadata: ModelMetadata


def training_threads(setting: int = 0) -> int:
    """Threads a training may use: the setting, or (0) every core but one, at least one.

    Training beside serving with OpenMP free to take every core starved the gunicorn workers and
    crawled itself: 12.5 s quiet, 401 s beside another CPU-heavy job on 2 cores.
    """
    return setting if setting > 0 else max(1, (os.cpu_count() or 1) - 1)


def limit_training_threads(setting: int = 0) -> threadpool_limits:
    """A context that caps the OpenMP and BLAS pools of this thread at training_threads(setting)."""
    threads = training_threads(setting)
    log.info("training with at most %d thread(s)", threads)
    return threadpool_limits(threads)


def check_history(first_week: int, last_week: int) -> None:
    """ValueError, in words, when the sales span fewer than MIN_HISTORY_WEEKS weeks: a forecast reads
    last year's same week, and the intervals need weeks the model did not see."""
    weeks = last_week - first_week + 1
    if weeks < MIN_HISTORY_WEEKS:
        first, last = (calendar.week_date(w)[0].date() for w in (first_week, last_week))
        raise ValueError(
            f"history too short: {weeks} weeks of sales ({first}..{last}); a model needs at least "
            f"{MIN_HISTORY_WEEKS} weeks (a year) to forecast from last year's weeks"
        )


def split_params(params: dict[str, Any] | None) -> tuple[FeatureConfig, dict[str, Any]]:
    """Split one params dict into pipeline settings and estimator settings."""
    params = dict(params or {})
    fields = FeatureConfig.__dataclass_fields__
    cfg = FeatureConfig(**{k: params.pop(k) for k in list(params) if k in fields})
    return cfg, params


def _importances(est: Estimator, X: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> dict[str, float]:
    """Permutation importance (increase of weighted MAE on the scaled target), on a sample."""
    if est.kind == "naive" or not len(X):
        return {}
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(X), size=min(3000, len(X)), replace=False)
    Xs, ys, ws = X[pick], y[pick], w[pick]
    base_err = float(np.average(np.abs(ys - est.predict(Xs)), weights=ws))
    out = {}
    for j, name in enumerate(FEATURE_NAMES):
        Xp = Xs.copy()
        Xp[:, j] = Xp[rng.permutation(len(Xp)), j]
        out[name] = round(float(np.average(np.abs(ys - est.predict(Xp)), weights=ws)) - base_err, 6)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def train(
    dataset: Dataset,
    kind: str = "hgb",
    through: str | pd.Timestamp | None = None,
    progress: Progress | None = None,
    params: dict[str, Any] | None = None,
) -> TrainedModel:
    """Fit `kind` on sales up to `through` (default: all); see the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    started = time.perf_counter()
    ds = dataset.through(through) if through is not None else dataset
    if ds.sales.empty:
        raise ValueError("no sales up to the training date")
    config, est_params = split_params(params)
    panel = Panel.from_sales(ds.sales)
    T = panel.last_week
    check_history(panel.first_week, T)
    covariates = build_covariates(ds, panel, T)
    est_params = {**make_estimator(kind).params, **est_params}
    # The series trained on are drawn before any feature is built (panel.sample_series): the
    # backtest, calibration and fit see only them; the Forecaster below serves every series.
    sample = sample_series(panel, config.max_series, config.seed)
    learn = panel if len(sample) == len(panel.store) else panel.subset(sample)
    if learn is not panel:
        say(progress, f"training on {len(sample):,} of {len(panel.store):,} series (max_series)")

    # 1. internal backtest and calibration
    calibrator, backtest, pred_sample = internal_backtest(
        learn, covariates, kind, config, est_params, params, progress
    )

    # 2. final fit
    say(progress, f"fitting {kind} on {len(ds.sales):,} rows up to {calendar.week_date(T)[0].date()}")
    ts = build_training_set(learn, covariates, T, config)
    est = make_estimator(kind, est_params).fit(ts.X, ts.y, ts.weight)
    if not calibrator.quantiles:
        fitted = ts.base + ts.scale * est.predict(ts.X)
        h = np.clip(ts.week - ts.origin, 1, MAX_HORIZON)
        calibrator.fit(h, ts.sales - fitted, interval_denominator(ts.scale, ts.base, calibrator.mix) / 1.5)
    if not len(pred_sample):
        pred_sample = ts.base[:5000] + ts.scale[:5000] * est.predict(ts.X[:5000])
    say(progress, "computing metadata (importances, reference distributions)")
    importances = _importances(est, ts.X, ts.y, ts.weight, config.seed)
    fit_seconds = time.perf_counter() - started
    forecaster = Forecaster(
        estimator=est, config=config, panel=panel, covariates=covariates, calibrator=calibrator
    )

    # 3. metadata (metadata.py documents every key)
    metadata: ModelMetadata = {
        "kind": kind,
        "params": {**config.to_dict(), **{k: v for k, v in est_params.items()}},
        "features": [
            {"name": n, "type": t, "description": d, **_valid_range(ts.X[:, j])}
            for j, (n, t, d) in enumerate(FEATURES)
        ],
        "covariates": list(COVARIATE_COLUMNS) + ["is_holiday"],
        "training_window": {
            "start": calendar.week_date(panel.first_week)[0].date().isoformat(),
            "end": calendar.week_date(T)[0].date().isoformat(),
            "rows": int(len(ds.sales)),
            "series": int(len(panel.store)),
            "training_series": int(len(learn.store)),
            "training_rows": int(len(ts.y)),
        },
        "origin": calendar.week_date(T)[0].date().isoformat(),
        "valid_range": [d.date().isoformat() for d in forecaster.valid_range()],
        "data_source": ds.source,
        "data_fingerprint": dataset.fingerprint(),
        "data_lineage": dataset.lineage(),
        "backtest": backtest,
        "intervals": calibrator.to_dict(),
        "residual_quantiles": dict(calibrator.quantiles),
        "feature_importances": importances,
        "reference": build_reference(covariates, T, pred_sample, config.seed),
        "train_seconds": round(fit_seconds, 2),
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    forecaster.metadata = metadata
    forecaster.version = f"{kind}-{metadata['origin']}"
    say(progress, f"done in {fit_seconds:.1f} s")
    return TrainedModel(forecaster=forecaster, metadata=metadata)


def _valid_range(col: np.ndarray) -> dict[str, Any]:
    finite = col[np.isfinite(col)]
    if not len(finite):
        return {"min": None, "max": None, "nullable": True}
    return {"min": float(finite.min()), "max": float(finite.max()), "nullable": bool(len(finite) < len(col))}


def save_model(trained: TrainedModel, models_dir: str, name: str = "storecast") -> ArtifactInfo:
    """Write the artifact and its metadata under models_dir (see artifacts.write_artifact)."""
    return write_artifact(trained.forecaster, trained.metadata, models_dir, name)
