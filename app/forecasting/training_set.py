"""Training rows built with the serving functions, from many past origins (never a second pipeline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.forecasting.covariates import Covariates
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.features import assemble, resolve_covariates
from app.forecasting.origin_state import origin_state
from app.forecasting.panel import Panel


@dataclass
class TrainingSet:
    X: np.ndarray
    y: np.ndarray  # scaled residual target
    weight: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    sales: np.ndarray
    week: np.ndarray
    origin: np.ndarray
    series: np.ndarray
    is_holiday: np.ndarray


def training_origins(panel: Panel, through: int, config: FeatureConfig) -> list[int]:
    first = panel.first_week + config.min_origin_week
    return list(range(through - 1, first - 1, -config.origin_step))[::-1]


def has_yearly_targets(panel: Panel, through: int, weeks: int = 13) -> bool:
    """At least `weeks` weeks up to `through` have the same week a year before in the data."""
    return through - panel.first_week >= 52 + weeks


def build_training_set(
    panel: Panel,
    cov: Covariates,
    through: int,
    config: FeatureConfig,
    horizons: int = 52,
    origins: list[int] | None = None,
    max_rows: int | None = None,
) -> TrainingSet:
    """Rows (origin o, target o+h <= through) built with the serving functions.

    Rows are drawn with probability proportional to their weight (holiday x5, series scale),
    capped at max_rows, so that an unweighted fit minimises the dollar WMAE; `weight` is what
    is left to apply (1 for most rows, less than 1 where the probability was capped at 1).
    """
    origins = training_origins(panel, through, config) if origins is None else origins
    max_rows = config.max_rows if max_rows is None else max_rows
    rng = np.random.default_rng(config.seed)
    store_pos_all = cov.store_pos(panel.store)
    # Served targets almost always have last year's week: train on such targets when there are
    # enough of them, not on those of the data's first year, which have none.
    yearly = config.year_before_only and has_yearly_targets(panel, through)
    first_target = panel.first_week + 52 if yearly else 0
    candidates = []
    for o in origins:
        last_t = min(o + horizons, through)
        if last_t <= o:
            continue
        block = panel.values[:, panel.column(o + 1) : panel.column(last_t) + 1]
        state = origin_state(panel, o, config)
        r, c = np.nonzero(~np.isnan(block) & state.has_history[:, None])
        t = c + o + 1
        keep = t >= first_target
        r, t = r[keep], t[keep]
        w = (
            np.where(cov.holiday_flag(store_pos_all[r], t), config.holiday_weight, 1.0)
            * state.scale[r] ** config.weight_power
        )
        candidates.append((state, r, t, w))
    if not candidates:
        raise ValueError("no training rows: the history is too short for the chosen origins")
    all_w = np.concatenate([w for *_, w in candidates])
    k = _inclusion_factor(all_w, max_rows)
    parts = []
    for state, r, t, w in candidates:
        p = np.minimum(1.0, k * w)
        sel = rng.random(len(r)) < p
        r, t, rest = r[sel], t[sel], (w[sel] * k / p[sel])
        if not len(r):
            continue
        sp = store_pos_all[r]
        values, _, holiday, _ = resolve_covariates(cov, sp, t)
        X, base, scale = assemble(state, r, t, cov, sp, values, holiday, config)
        sales = panel.values[r, panel.column(t)]
        parts.append((X, base, scale, sales, t, np.full(len(r), state.origin), r, holiday, rest))
    X, base, scale, sales, t, o, r, hol, rest = (np.concatenate(p) for p in zip(*parts, strict=True))
    y = (sales - base) / scale
    return TrainingSet(X, y, rest, base, scale, sales, t, o, r, hol)


def _inclusion_factor(weight: np.ndarray, n: int) -> float:
    """k such that sum(min(1, k * weight)) is about n (all rows when n >= len)."""
    if n >= len(weight):
        return float(1.0 / max(weight.min(), 1e-12))
    lo, hi = 0.0, n / weight.sum()
    while np.minimum(1.0, hi * weight).sum() < n:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if np.minimum(1.0, mid * weight).sum() < n:
            lo = mid
        else:
            hi = mid
    return hi
