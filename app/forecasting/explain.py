"""Why this number: additive components of a forecast that sum exactly to it.

A prediction is `base + scale * f(X)` (features.assemble, estimators): base is last year's aligned,
denoised value plus part of the recent year-over-year change, and f the learner's scaled correction.
The components split it for a planner:

- `last_year`: the same week last year, aligned on the moving holidays and denoised across stores
  (leaning part of the way to the week two years before where the data has it, at last year's level,
  and to last year's neighbouring weeks away from holidays);
- `trend`: the level change since last year, both the part carried in the base and the learner's
  response to the recent-level features;
- `holiday`: the learner's response to the holiday flag and the place in the calendar;
- `covariates`: its response to markdowns, temperature, fuel, CPI and unemployment;
- `model`: the rest of its correction (from last year's shape: raw against smoothed, the weeks around).

The learner's share is split among the three feature groups by their exact Shapley values against
one reference row (2^3 evaluations of f: X itself and 7 others in one batched call). The references:
the trend group at "no change since last year" (the recent levels at their denoised year-before
values), the calendar group at a plain midsummer week without a holiday, the covariates at the
store's values the same week last year (what the model assumes when it knows nothing newer).
`model` is f at the reference row, and it takes what floating point leaves over, so the components
add up to the prediction exactly. Shapley values are order-free: no group is favoured by going first.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import factorial

import numpy as np

from app.forecasting import calendar
from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.estimators import Estimator
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.features import IDX, resolve_covariates
from app.forecasting.origin_state import OriginState

COMPONENTS = ("last_year", "trend", "holiday", "covariates", "model")
COMPONENT_DESCRIPTIONS = {
    "last_year": "sales of the same week last year, aligned on the moving holidays, smoothed across stores "
    "(blended with the week two years before where known, and with its neighbours away from holidays)",
    "trend": "the change in the series' level since last year",
    "holiday": "the model's adjustment for the holiday flag and the week's place in the calendar "
    "(against a plain midsummer week)",
    "covariates": "the model's response to markdowns, temperature, fuel price, CPI and unemployment "
    "(against the store's values the same week last year)",
    "model": "the rest of the model's correction of last year's value",
}
TREND_FEATURES = ("last", "level4", "level8", "level13", "growth", "yoy4", "yoy8", "yoy13", "base")
CALENDAR_FEATURES = ("is_holiday", "week_of_year", "weeks_to_thanksgiving", "weeks_to_christmas")
GROUPS = ("trend", "holiday", "covariates")
REFERENCE_WEEK = "2011-07-29"  # late July: far from every holiday; only its calendar position is used


@lru_cache(maxsize=1)
def _reference_calendar() -> dict[str, float]:
    table = calendar.calendar_table(calendar.week_index(REFERENCE_WEEK))
    return {
        "is_holiday": 0.0,
        **{name: float(table[name][0]) for name in CALENDAR_FEATURES if name != "is_holiday"},
    }


def _shapley_weights(n: int) -> dict[int, float]:
    return {k: factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)}


def reference_rows(
    X: np.ndarray,
    state: OriginState,
    rows: np.ndarray,
    scale: np.ndarray,
    trend_base: np.ndarray,
    cov: Covariates,
    store_pos: np.ndarray,
    week: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each group, its feature columns and their reference values [n, k]."""
    st = {k: v[rows] for k, v in state.stats.items()}
    with np.errstate(invalid="ignore"):
        year_ago = {k: st[f"level{k}"] - st[f"yoy{k}"] for k in (4, 8, 13)}
    last_year_end = state.svd[rows, state.window - 1 - 52]  # the denoised week a year before the origin
    trend_ref = {
        "last": np.where(np.isfinite(last_year_end), last_year_end, year_ago[4]),
        **{f"level{k}": year_ago[k] for k in (4, 8, 13)},
        "growth": np.zeros(len(rows)),
        **{f"yoy{k}": np.zeros(len(rows)) for k in (4, 8, 13)},
    }
    trend = np.column_stack(
        [
            *(
                np.where(np.isfinite(trend_ref[name]), trend_ref[name] / scale, X[:, IDX[name]])
                for name in TREND_FEATURES[:-1]
            ),
            X[:, IDX["base"]] - trend_base / scale,
        ]
    )
    cal = _reference_calendar()
    holiday = np.tile([cal[name] for name in CALENDAR_FEATURES], (len(rows), 1))
    current = X[:, [IDX[c] for c in COVARIATE_COLUMNS]].astype(float)
    last_year, *_ = resolve_covariates(cov, store_pos, week - 52)
    markdown = np.array([c.startswith("markdown") for c in COVARIATE_COLUMNS])
    # Markdowns a year before may be unrecorded (NaN): the model knows that state. Other covariates
    # keep this year's value where last year's is unknown (no contribution rather than an invented one).
    covariates = np.where(markdown[None, :] | np.isfinite(last_year), last_year, current)
    return {
        "trend": (np.array([IDX[n] for n in TREND_FEATURES]), trend),
        "holiday": (np.array([IDX[n] for n in CALENDAR_FEATURES]), holiday),
        "covariates": (np.array([IDX[c] for c in COVARIATE_COLUMNS]), covariates),
    }


def components(
    estimator: Estimator,
    X: np.ndarray,
    learned: np.ndarray,
    base: np.ndarray,
    scale: np.ndarray,
    prediction: np.ndarray,
    state: OriginState,
    rows: np.ndarray,
    cov: Covariates,
    store_pos: np.ndarray,
    week: np.ndarray,
    config: FeatureConfig,
) -> dict[str, np.ndarray]:
    """Dollar components (COMPONENTS order) of rows predicted as `prediction` from X (`learned`: the
    estimator's output on X), base and scale."""
    n = len(rows)
    trend_base = config.growth_shrink * np.nan_to_num(state.stats["yoy4"][rows], nan=0.0)
    last_year = base - trend_base
    refs = reference_rows(X, state, rows, scale, trend_base, cov, store_pos, week)
    subsets = [s for k in range(len(GROUPS) + 1) for s in combinations(GROUPS, k)]
    partial = subsets[:-1]  # the last, every group as it is, is X itself: already evaluated
    stacked = np.empty((len(partial) * n, X.shape[1]), dtype=X.dtype)
    for i, subset in enumerate(partial):
        block = X.copy()
        for group in GROUPS:
            if group not in subset:
                cols, values = refs[group]
                block[:, cols] = values
        stacked[i * n : (i + 1) * n] = block
    f = estimator.predict(stacked).reshape(len(partial), n)
    value = {subset: f[i] for i, subset in enumerate(partial)}
    value[subsets[-1]] = learned
    weight = _shapley_weights(len(GROUPS))
    phi = {}
    for group in GROUPS:
        total = np.zeros(n)
        for subset in subsets:
            if group in subset:
                continue
            with_group = tuple(g for g in GROUPS if g in subset or g == group)
            total += weight[len(subset)] * (value[with_group] - value[subset])
        phi[group] = total
    out = {
        "last_year": last_year,
        "trend": trend_base + scale * phi["trend"],
        "holiday": scale * phi["holiday"],
        "covariates": scale * phi["covariates"],
    }
    out["model"] = prediction - (out["last_year"] + out["trend"] + out["holiday"] + out["covariates"])
    return out


def cold_components(prediction: np.ndarray) -> dict[str, np.ndarray]:
    """A cold start rests on the store's level and the department's profile: all of it is `model`."""
    zero = np.zeros(len(prediction))
    return {**{name: zero for name in COMPONENTS[:-1]}, "model": np.asarray(prediction, dtype=float)}


def rounded(values: dict[str, float], total: float) -> dict[str, float]:
    """Components in cents that add up to `total` rounded to cents: the last one absorbs the rounding."""
    cents = {name: round(values[name] * 100) for name in COMPONENTS[:-1]}
    cents[COMPONENTS[-1]] = round(total * 100) - sum(cents.values())
    return {name: cents[name] / 100 for name in COMPONENTS}
