"""THE feature pipeline, shared by training and serving (never two copies).

Direct multi-origin design. For an origin week T and a target week T+h (h = 1..52), every
sales-derived feature comes from sales at weeks <= T only:

1. `origin_state(panel, T)` (origin_state.py) computes, once per origin, the per-series state:
   levels over the last 4/8/13/52 weeks, the level a year before, the last observed value, the
   series scale and a window of raw and SVD-denoised (low rank per department across stores) history.
2. `assemble(...)` (here) builds rows cheaply from that state plus the covariates of the target week.

Training calls both for many past origins (training_set.py); the Forecaster calls them for its one
origin. This module also holds the feature catalogue: names, kinds and the words a planner reads. The
model's target is the residual to a base divided by the series scale; `base` and `scale` are
returned so that predictions can be mapped back to dollars. The base is last year's (aligned,
denoised) value plus part of the series' recent year-over-year change, which leaves the learner a
smaller correction to make. Where the data holds the week two years before, the base leans
`two_year_weight` of the way to it (brought to last year's level), and away from holidays
`neighbour_weight` of the way to the mean of last year's two neighbouring weeks (the same season,
independent noise): both average out one year's noise without moving a real holiday spike.
"""

from __future__ import annotations

import numpy as np

from app.forecasting import calendar
from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.inputs import COVARIATES
from app.forecasting.origin_state import OriginState

FEATURES: list[tuple[str, str, str]] = [
    # name, type, description
    ("store", "code", "store number (numeric code)"),
    ("dept", "code", "department number (numeric code)"),
    ("store_size", "numeric", "store size (square feet)"),
    ("store_type", "code", "store type A=0, B=1, C=2"),
    ("log_scale", "numeric", "log10 of the series scale (mean |sales| over the 52 weeks to the origin)"),
    (
        "base",
        "numeric",
        "the value the model corrects: denoised aligned yearly lag (leaning to the week two years"
        " before where known, and to its neighbouring weeks away from holidays) + part of yoy4, / scale",
    ),
    ("lag52", "numeric", "sales 52 weeks before the target, / scale"),
    ("lag51", "numeric", "sales 51 weeks before the target if <= origin, / scale"),
    ("lag53", "numeric", "sales 53 weeks before the target, / scale"),
    ("lag_aligned", "numeric", "sales of the holiday-aligned week a year before, / scale"),
    ("svd_lag_aligned", "numeric", "denoised (low rank per dept) aligned yearly lag, / scale"),
    ("svd_lag_prev", "numeric", "denoised value the week before the aligned lag, / scale"),
    ("svd_lag_next", "numeric", "denoised value the week after the aligned lag (if <= origin), / scale"),
    ("last", "numeric", "last observed sales at or before the origin, / scale"),
    ("level4", "numeric", "mean sales over the 4 weeks to the origin, / scale"),
    ("level8", "numeric", "mean sales over the 8 weeks to the origin, / scale"),
    ("level13", "numeric", "mean sales over the 13 weeks to the origin, / scale"),
    ("level52", "numeric", "mean sales over the 52 weeks to the origin, / scale"),
    ("level13_year_ago", "numeric", "mean sales over the 13 weeks to the origin a year before, / scale"),
    ("growth", "numeric", "(level13 - level13_year_ago) / scale"),
    ("yoy4", "numeric", "level4 minus the denoised level of the same 4 weeks a year before, / scale"),
    ("yoy8", "numeric", "level8 minus the denoised level of the same 8 weeks a year before, / scale"),
    ("yoy13", "numeric", "level13 minus the denoised level of the same 13 weeks a year before, / scale"),
    ("is_holiday", "bool", "target week is a flagged holiday week"),
    ("week_of_year", "numeric", "ISO week of the target week"),
    ("weeks_to_thanksgiving", "numeric", "signed weeks from the target week to the nearest Thanksgiving"),
    ("weeks_to_christmas", "numeric", "signed weeks from the target week to the nearest Christmas"),
    (
        "christmas_shift",
        "numeric",
        "share of a week the target's days before Christmas moved since last year",
    ),
    ("is_easter", "bool", "target week ends on Good Friday (the Easter shopping week)"),
    ("lag52_is_easter", "bool", "the week 52 weeks before the target was the Easter week"),
    *[(c, "numeric", f"{c} of the store in the target week") for c in COVARIATE_COLUMNS],
]
FEATURE_NAMES = [f[0] for f in FEATURES]
IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# What a planner reads for each feature (charts, model card, the features API): the one mapping.
FEATURE_LABELS: dict[str, str] = {
    "store": "Store",
    "dept": "Department",
    "store_size": "Store size",
    "store_type": "Store type",
    "log_scale": "Size of the series' sales",
    "base": "Last year's sales, smoothed and trended",
    "lag52": "Sales 52 weeks earlier",
    "lag51": "Sales 51 weeks earlier",
    "lag53": "Sales 53 weeks earlier",
    "lag_aligned": "Sales in the same holiday week last year",
    "svd_lag_aligned": "Same week last year, smoothed",
    "svd_lag_prev": "The week before that, smoothed",
    "svd_lag_next": "The week after that, smoothed",
    "last": "Latest week's sales",
    "level4": "Average sales, last 4 weeks",
    "level8": "Average sales, last 8 weeks",
    "level13": "Average sales, last 13 weeks",
    "level52": "Average sales, last 52 weeks",
    "level13_year_ago": "Average sales, same 13 weeks last year",
    "growth": "Growth on last year (13 weeks)",
    "yoy4": "Change on last year (4 weeks)",
    "yoy8": "Change on last year (8 weeks)",
    "yoy13": "Change on last year (13 weeks)",
    "is_holiday": "Holiday week",
    "week_of_year": "Week of the year",
    "weeks_to_thanksgiving": "Weeks to Thanksgiving",
    "weeks_to_christmas": "Weeks to Christmas",
    "christmas_shift": "Christmas weekday shift",
    "is_easter": "Easter week",
    "lag52_is_easter": "Easter week 52 weeks earlier",
    **{name: covariate.label for name, covariate in COVARIATES.items()},
}


def feature_label(name: str) -> str:
    """The plain name of a feature for people ("Sales 52 weeks earlier" for lag52); unknown names as
    they are, with underscores as spaces."""
    return FEATURE_LABELS.get(name) or name.replace("_", " ").capitalize()


def resolve_covariates(
    cov: Covariates, store_pos: np.ndarray, week: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covariate values and sources of (store, target week) rows from the resolved grid."""
    col = week - cov.first_week
    ok = (store_pos >= 0) & (col >= 0) & (col <= cov.values.shape[1] - 1)
    sp, cc = np.where(ok, store_pos, 0), np.clip(col, 0, cov.values.shape[1] - 1)
    values = cov.values[sp, cc].astype(float)
    source = cov.source[sp, cc].copy()
    values[~ok] = np.nan
    source[~ok] = 3
    holiday = cov.holiday[sp, cc].copy()
    holiday_source = cov.holiday_source[sp, cc].copy()
    if (~ok).any():
        holiday[~ok] = np.asarray(calendar.calendar_table(week[~ok])["is_holiday"])
        holiday_source[~ok] = 5
    return values, source, holiday, holiday_source


def aligned_weeks(cov: Covariates, week: np.ndarray, origin: int, config: FeatureConfig) -> np.ndarray:
    """The week a year before each target week that its yearly lag reads (holiday-aligned when the
    config says so, a plain 52 weeks when the aligned week would be after the origin)."""
    cal_col = np.clip(week - cov.first_week, 0, len(cov.calendar["aligned_lag"]) - 1)
    aligned = cov.calendar["aligned_lag"][cal_col] if config.align else week - 52
    return np.where(aligned > origin, week - 52, aligned)


def assemble(
    state: OriginState,
    rows: np.ndarray,
    week: np.ndarray,
    cov: Covariates,
    store_pos: np.ndarray,
    covariate_values: np.ndarray,
    holiday: np.ndarray,
    config: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature matrix X [n, F] for series `rows` at target weeks `week` (> origin), plus the
    base (last year's value moved by the recent yearly change) and scale that map the model's
    output back to sales."""
    n = len(rows)
    origin = state.origin
    w0 = origin - state.window + 1  # absolute week of window column 0
    raw, svd = state.raw, state.svd

    def lag(matrix: np.ndarray, src_week: np.ndarray) -> np.ndarray:
        c = src_week - w0
        ok = (c >= 0) & (src_week <= origin)
        out = matrix[rows, np.clip(c, 0, state.window - 1)]
        return np.where(ok, out, np.nan)

    cal_col = np.clip(week - cov.first_week, 0, len(cov.calendar["aligned_lag"]) - 1)
    aligned = aligned_weeks(cov, week, origin, config)
    scale = state.scale[rows]
    lag52, lag51, lag53 = lag(raw, week - 52), lag(raw, week - 51), lag(raw, week - 53)
    lag_al = lag(raw, aligned)
    svd_al, svd_prev, svd_next = lag(svd, aligned), lag(svd, aligned - 1), lag(svd, aligned + 1)
    st = {k: v[rows] for k, v in state.stats.items()}
    shift = _calendar_column(cov, "christmas_shift", cal_col)
    if not config.christmas_shift or not config.align:
        shift = np.zeros(n)
    base = _shifted(svd_al, np.where(shift > 0, svd_next, svd_prev), shift)
    for alt in (lag_al, lag52, st["level8"], st["last"]):
        base = np.where(np.isnan(base), alt, base)
    base = np.nan_to_num(base, nan=0.0) + config.growth_shrink * np.nan_to_num(st["yoy4"], nan=0.0)
    # One year of history makes last year's value carry that week's noise whole. Where the data holds
    # two years, the base leans part of the way to the week two years before (denoised, aligned again,
    # brought to last year's level by the series' mean change between the two years).
    before = aligned_weeks(cov, aligned, origin, config)
    two_years = np.where(before >= cov.first_week, lag(svd, before) + st["yoy52"] - svd_al, np.nan)
    base = base + config.two_year_weight * np.nan_to_num(two_years, nan=0.0)
    # Last year's single week also carries that week's own noise. Away from holidays the week next to
    # it estimates the same season, so the base leans part of the way to the mean of its neighbours.
    # Not where a one-week spike is real: a flagged holiday week (the target or either neighbour), the
    # weeks within 2 of Thanksgiving or Christmas, and the Easter week itself.
    easter = _calendar_column(cov, "is_easter", cal_col).astype(bool)
    quiet = _quiet_weeks(cov, aligned, store_pos, holiday, cal_col, easter)
    neighbours = (svd_prev + svd_next) / 2 - svd_al
    base = base + np.where(quiet, config.neighbour_weight * np.nan_to_num(neighbours, nan=0.0), 0.0)

    X = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    sp = np.where(store_pos >= 0, store_pos, 0)
    X[:, IDX["store"]] = cov.stores[sp] if len(cov.stores) else np.nan
    X[:, IDX["dept"]] = state.dept[rows]
    X[:, IDX["store_size"]] = cov.store_size[sp]
    X[:, IDX["store_type"]] = cov.store_type[sp]
    X[:, IDX["log_scale"]] = np.log10(scale)
    for name, val in (
        ("base", base),
        ("lag52", lag52),
        ("lag51", lag51),
        ("lag53", lag53),
        ("lag_aligned", lag_al),
        ("svd_lag_aligned", svd_al),
        ("svd_lag_prev", svd_prev),
        ("svd_lag_next", svd_next),
        ("last", st["last"]),
        ("level4", st["level4"]),
        ("level8", st["level8"]),
        ("level13", st["level13"]),
        ("level52", st["level52"]),
        ("level13_year_ago", st["level13_year_ago"]),
        ("growth", st["level13"] - st["level13_year_ago"]),
        ("yoy4", st["yoy4"]),
        ("yoy8", st["yoy8"]),
        ("yoy13", st["yoy13"]),
    ):
        X[:, IDX[name]] = val / scale
    X[:, IDX["is_holiday"]] = holiday
    X[:, IDX["week_of_year"]] = cov.calendar["week_of_year"][cal_col]
    X[:, IDX["weeks_to_thanksgiving"]] = cov.calendar["weeks_to_thanksgiving"][cal_col]
    X[:, IDX["weeks_to_christmas"]] = cov.calendar["weeks_to_christmas"][cal_col]
    X[:, IDX["christmas_shift"]] = shift
    lag52_col = np.clip(week - 52 - cov.first_week, 0, len(cov.calendar["aligned_lag"]) - 1)
    easter_before = _calendar_column(cov, "is_easter", lag52_col).astype(bool) & (week - 52 >= cov.first_week)
    X[:, IDX["is_easter"]] = easter
    X[:, IDX["lag52_is_easter"]] = easter_before
    for j, c in enumerate(COVARIATE_COLUMNS):
        X[:, IDX[c]] = covariate_values[:, j]
    return X, base, scale


def _quiet_weeks(
    cov: Covariates,
    aligned: np.ndarray,
    store_pos: np.ndarray,
    holiday: np.ndarray,
    cal_col: np.ndarray,
    easter: np.ndarray,
) -> np.ndarray:
    """Target weeks whose base may borrow from last year's neighbouring weeks: no holiday flag on the
    target or on either neighbour of its aligned week, more than 2 weeks from Thanksgiving and
    Christmas, and not the Easter week (holiday spikes are real, not noise to smooth away)."""
    far = (np.abs(cov.calendar["weeks_to_thanksgiving"][cal_col]) > 2) & (
        np.abs(cov.calendar["weeks_to_christmas"][cal_col]) > 2
    )
    flagged_target = np.asarray(holiday, dtype=bool)  # serving passes 0/1 floats (a caller may set them)
    neighbour_flagged = cov.holiday_flag(store_pos, aligned - 1) | cov.holiday_flag(store_pos, aligned + 1)
    return ~flagged_target & far & ~easter & ~neighbour_flagged


def _calendar_column(cov: Covariates, name: str, col: np.ndarray) -> np.ndarray:
    """A calendar column at grid columns `col`; zeros for grids pickled before the column existed."""
    values = cov.calendar.get(name)
    return np.zeros(len(col)) if values is None else values[col]


def _shifted(value: np.ndarray, neighbour: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Last year's value moved by `shift` of a week towards its neighbour (the Christmas weekday
    shift): (1 - |shift|) x value + |shift| x neighbour, the value alone where the neighbour is unknown."""
    frac = np.abs(shift)
    moved = (1 - frac) * value + frac * neighbour
    return np.where((frac > 0) & ~np.isnan(neighbour), moved, value)
