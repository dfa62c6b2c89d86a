"""THE feature pipeline, shared by training and serving (never two copies).

Direct multi-origin design. For an origin week T and a target week T+h (h = 1..52), every
sales-derived feature comes from sales at weeks <= T only:

1. `origin_state(panel, T)` computes, once per origin, the per-series state: levels over the last
   4/8/13/52 weeks, the level a year before, the last observed value, the series scale and a
   window of raw and SVD-denoised (low rank per department across stores) history.
2. `assemble(...)` builds rows cheaply from that state plus the covariates of the target week.

Training calls both for many past origins; the Forecaster calls them for its one origin. The
model's target is the residual to a base divided by the series scale; `base` and `scale` are
returned so that predictions can be mapped back to dollars. The base is last year's (aligned,
denoised) value plus part of the series' recent year-over-year change, which leaves the learner a
smaller correction to make. Where the data holds the week two years before, the base leans
`two_year_weight` of the way to it (brought to last year's level), and away from holidays
`neighbour_weight` of the way to the mean of last year's two neighbouring weeks (the same season,
independent noise): both average out one year's noise without moving a real holiday spike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from app.forecasting import calendar
from app.forecasting.data import COVARIATE_COLUMNS, Dataset

WINDOW = 106  # weeks of history in an origin state: lags 51..53 and the week two years before, aligned
STORE_TYPES = {"A": 0, "B": 1, "C": 2}
COV_SOURCES = ("features", "last_year", "last_known", "missing", "caller", "calendar")
# The real data has 3,331 series: all of them are trained on. A chain of 20x trains on a sample of this
# size, so training's time and memory stop growing with the chain (max_rows already capped its rows).
DEFAULT_MAX_SERIES = 4_000


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the pipeline; part of a model's params (the backtest chose the defaults)."""

    align: bool = True  # aligned yearly lag (Thanksgiving/Christmas/Easter) instead of a plain 52-week lag
    svd_rank: int = 8  # rank of the per-department store x week denoising
    svd_weeks: int = 104  # history used by the denoising
    svd_row_power: float = 0.5  # each series enters the denoising divided by its size to this power
    origin_step: int = 4  # weeks between training origins
    min_origin_week: int = 13  # earliest training origin (week index since the start of the data)
    max_rows: int = 300_000  # training rows kept (drawn in proportion to their weight, deterministic)
    max_series: int = DEFAULT_MAX_SERIES  # series training builds features for (0: all); see sample_series
    holiday_weight: float = 5.0
    weight_power: float = 1.0  # sample weight = scale**power (1: the loss is in dollars, like WMAE)
    seed: int = 0
    growth_shrink: float = 0.5  # share of the recent year-over-year change (yoy4) carried into the base
    two_year_weight: float = 0.3  # share of the base from the week two years before, where the data has it
    neighbour_weight: float = 0.3  # share of a quiet week's base from last year's neighbouring weeks
    year_before_only: bool = True  # train on targets that have a week a year before in the data
    christmas_shift: bool = True  # December bases cover the same days before Christmas as last year's
    easter_features: bool = True  # is_easter and lag52_is_easter features (0 when off)
    skill_rescale: bool = True  # intervals rescaled to a model fitted 13 weeks before the end

    def to_dict(self) -> dict:
        return asdict(self)


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
    "temperature": "Temperature",
    "fuel_price": "Fuel price",
    **{f"markdown{i}": f"Markdown {i}" for i in range(1, 6)},
    "cpi": "Consumer price index",
    "unemployment": "Unemployment rate",
}


def feature_label(name: str) -> str:
    """The plain name of a feature for people ("Sales 52 weeks earlier" for lag52); unknown names as
    they are, with underscores as spaces."""
    return FEATURE_LABELS.get(name) or name.replace("_", " ").capitalize()


# panel
@dataclass
class Panel:
    """Sales as a dense series x week matrix (NaN = no row), weeks as absolute week indices."""

    store: np.ndarray  # [S] int
    dept: np.ndarray  # [S] int
    first_week: int
    values: np.ndarray  # [S, W] float64

    @property
    def last_week(self) -> int:
        return self.first_week + self.values.shape[1] - 1

    def keys(self) -> dict[tuple[int, int], int]:
        return {(int(s), int(d)): i for i, (s, d) in enumerate(zip(self.store, self.dept, strict=True))}

    @classmethod
    def from_sales(cls, sales: pd.DataFrame) -> Panel:
        weeks = calendar.week_index(sales["date"])
        key = sales["store"].to_numpy(np.int64) * 1000 + sales["dept"].to_numpy(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        first = int(weeks.min()) if len(weeks) else 0
        n_weeks = int(weeks.max()) - first + 1 if len(weeks) else 1
        values = np.full((len(uniq), n_weeks), np.nan)
        values[inv, weeks - first] = sales["weekly_sales"].to_numpy(float)
        return cls(store=uniq // 1000, dept=uniq % 1000, first_week=first, values=values)

    def column(self, week: np.ndarray | int) -> np.ndarray | int:
        return np.asarray(week) - self.first_week

    def subset(self, rows: np.ndarray) -> Panel:
        """The panel of the series at `rows` only (same weeks)."""
        return Panel(self.store[rows], self.dept[rows], self.first_week, self.values[rows])


def sample_series(panel: Panel, max_series: int, seed: int = 0) -> np.ndarray:
    """Rows of at most `max_series` series, the same share of every department; all when fewer.

    Training draws its series before any feature is built, so its features, backtest and calibration
    cost what `max_series` series cost however large the chain. Stratified by department because the
    denoising works per department across stores: each department keeps a random share of its stores,
    as a smaller chain would have (largest remainders, so the total is exactly `max_series`).
    """
    n = len(panel.store)
    if max_series <= 0 or n <= max_series:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    _, inverse, counts = np.unique(panel.dept, return_inverse=True, return_counts=True)
    quota = counts * (max_series / n)
    take = np.floor(quota).astype(np.int64)
    short = max_series - int(take.sum())
    take[np.argsort(take - quota, kind="stable")[:short]] += 1
    chosen = [rng.choice(np.flatnonzero(inverse == d), size=k, replace=False) for d, k in enumerate(take)]
    return np.sort(np.concatenate(chosen))


# covariates
@dataclass
class Covariates:
    """Store x week covariates resolved once: the features table where known, else the store's
    value the same week a year before, else its last known value; with the source of each cell."""

    stores: np.ndarray  # [N] store numbers
    first_week: int
    values: np.ndarray  # [N, W, C] float32 in COVARIATE_COLUMNS order
    source: np.ndarray  # [N, W, C] int8 index into COV_SOURCES
    holiday: np.ndarray  # [N, W] bool
    holiday_source: np.ndarray  # [N, W] int8
    calendar: dict[
        str, np.ndarray
    ]  # per week: weeks_to_thanksgiving, weeks_to_christmas, week_of_year, aligned_lag
    store_size: np.ndarray  # [N]
    store_type: np.ndarray  # [N]

    @property
    def last_week(self) -> int:
        return self.first_week + self.values.shape[1] - 1

    def store_pos(self, stores: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.stores, stores)
        pos = np.clip(pos, 0, len(self.stores) - 1)
        return np.where(self.stores[pos] == stores, pos, -1)

    def holiday_flag(self, store_pos: np.ndarray, week: np.ndarray) -> np.ndarray:
        """The holiday flag of (store position, week) rows, read at the grid's nearest store and week."""
        return self.holiday[
            np.maximum(store_pos, 0), np.clip(week - self.first_week, 0, self.holiday.shape[1] - 1)
        ]

    @classmethod
    def build(cls, dataset: Dataset, first_week: int, last_week: int) -> Covariates:
        stores = np.array(sorted(set(dataset.stores["store"].astype(int))), dtype=np.int64)
        n_w = last_week - first_week + 1
        feats = dataset.features
        raw = np.full((len(stores), n_w, len(COVARIATE_COLUMNS)), np.nan)
        hol = np.zeros((len(stores), n_w), dtype=bool)
        hol_known = np.zeros((len(stores), n_w), dtype=bool)
        if len(feats):
            w = calendar.week_index(feats["date"]) - first_week
            s = np.searchsorted(stores, feats["store"].to_numpy(np.int64))
            s = np.clip(s, 0, len(stores) - 1)
            ok = (w >= 0) & (w < n_w) & (stores[s] == feats["store"].to_numpy(np.int64))
            raw[s[ok], w[ok]] = feats[COVARIATE_COLUMNS].to_numpy(float)[ok]
            hol[s[ok], w[ok]] = feats["is_holiday"].to_numpy(bool)[ok]
            hol_known[s[ok], w[ok]] = True
        values = raw.copy()
        source = np.where(np.isnan(raw), 3, 0).astype(np.int8)
        # same week a year before (from the table itself, not from an earlier fallback)
        year_before = np.full_like(raw, np.nan)
        year_before[:, 52:] = raw[:, :-52] if n_w > 52 else year_before[:, 52:]
        use = np.isnan(values) & ~np.isnan(year_before)
        values[use] = year_before[use]
        source[use] = 1
        # last known value of the table
        last_known = raw.copy()
        for j in range(1, n_w):
            cur, prev = last_known[:, j], last_known[:, j - 1]
            gap = np.isnan(cur)
            cur[gap] = prev[gap]
        use = np.isnan(values) & ~np.isnan(last_known)
        values[use] = last_known[use]
        source[use] = 2
        weeks = np.arange(first_week, last_week + 1)
        cal = calendar.calendar_table(weeks)
        holiday = np.where(hol_known, hol, cal["is_holiday"][None, :])
        holiday_source = np.where(hol_known, 0, 5).astype(np.int8)
        st = dataset.stores.set_index("store").reindex(stores)
        return cls(
            stores=stores,
            first_week=first_week,
            values=values,
            source=source,
            holiday=holiday,
            holiday_source=holiday_source,
            calendar={k: v for k, v in cal.items() if k != "is_holiday"},
            store_size=st["size"].to_numpy(float),
            store_type=st["type"].map(STORE_TYPES).to_numpy(float),
        )

    def extended(self, last_week: int) -> Covariates:
        """The grid through `last_week`: new weeks take the store's value a year before, else its last
        value (sources 1 and 2), and the calendar's holidays; used when the origin rolls forward."""
        extra = last_week - self.last_week
        if extra <= 0:
            return self
        n, w, c = self.values.shape
        values = np.concatenate(
            [self.values, np.full((n, extra, c), np.nan, dtype=self.values.dtype)], axis=1
        )
        source = np.concatenate([self.source, np.full((n, extra, c), 3, dtype=np.int8)], axis=1)
        for j in range(w, w + extra):
            year_before = values[:, j - 52] if j >= 52 else np.full((n, c), np.nan)
            use = ~np.isnan(year_before)
            values[:, j][use], source[:, j][use] = year_before[use], 1
            prev = values[:, j - 1]
            use = np.isnan(values[:, j]) & ~np.isnan(prev)
            values[:, j][use], source[:, j][use] = prev[use], 2
        weeks = np.arange(self.first_week, last_week + 1)
        cal = calendar.calendar_table(weeks)
        new_holiday = np.broadcast_to(cal["is_holiday"][None, w:], (n, extra))
        return replace(
            self,
            values=values,
            source=source,
            holiday=np.concatenate([self.holiday, new_holiday], axis=1),
            holiday_source=np.concatenate([self.holiday_source, np.full((n, extra), 5, np.int8)], axis=1),
            calendar={k: v for k, v in cal.items() if k != "is_holiday"},
        )

    def with_observed(self, features: pd.DataFrame) -> Covariates:
        """The grid with observed covariates (rows of a features table) in place of what it assumed."""
        if features.empty:
            return self
        values, source = self.values.copy(), self.source.copy()
        holiday, holiday_source = self.holiday.copy(), self.holiday_source.copy()
        w = calendar.week_index(features["date"]) - self.first_week
        s = self.store_pos(features["store"].to_numpy(np.int64))
        ok = (s >= 0) & (w >= 0) & (w < values.shape[1])
        s, w = s[ok], w[ok]
        observed = features[COVARIATE_COLUMNS].to_numpy(float)[ok]
        known = ~np.isnan(observed)
        cell_values, cell_source = values[s, w], source[s, w]
        cell_values[known], cell_source[known] = observed[known], 0
        values[s, w], source[s, w] = cell_values, cell_source
        holiday[s, w] = features["is_holiday"].to_numpy(bool)[ok]
        holiday_source[s, w] = 0
        return replace(self, values=values, source=source, holiday=holiday, holiday_source=holiday_source)


# origin state
@dataclass
class OriginState:
    """Everything a forecast from `origin` needs from past sales, per series."""

    origin: int  # absolute week index
    scale: np.ndarray  # [S]
    stats: dict[str, np.ndarray]  # last, level4/8/13/52, level13_year_ago, yoy4/8/13: [S]
    raw: np.ndarray  # [S, WINDOW] sales at weeks origin-WINDOW+1 .. origin
    svd: np.ndarray  # [S, WINDOW] denoised sales, same weeks
    has_history: np.ndarray  # [S] bool: any sales at or before the origin
    dept: np.ndarray  # [S] department of each series

    @property
    def window(self) -> int:
        """Weeks of history held (WINDOW, or fewer in a state pickled by an older version)."""
        return self.raw.shape[1]


def _window(values: np.ndarray, first_week: int, start: int, stop: int) -> np.ndarray:
    """values[:, start..stop] (absolute weeks, inclusive), NaN-padded outside the panel."""
    out = np.full((values.shape[0], stop - start + 1), np.nan)
    lo, hi = max(start, first_week), min(stop, first_week + values.shape[1] - 1)
    if hi >= lo:
        out[:, lo - start : hi - start + 1] = values[:, lo - first_week : hi - first_week + 1]
    return out


def _nanmean(a: np.ndarray) -> np.ndarray:
    count = np.sum(~np.isnan(a), axis=1)
    total = np.nansum(a, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _denoise(hist: np.ndarray, dept: np.ndarray, rank: int, row_power: float = 0.0) -> np.ndarray:
    """Rank-k reconstruction of each department's store x week matrix (missing = 0).

    Projects on the top-k eigenvectors of M M^T (stores x stores): the same result as a
    truncated SVD, an order of magnitude faster for these small matrices. In dollars the fit is
    dominated by the largest stores, and a small store's own pattern is smoothed away; each row is
    divided by its size**row_power first and multiplied back after (0.5: weekly noise grows about
    with the square root of the level), so that every store's pattern counts.
    """
    out = np.full_like(hist, np.nan)
    filled = np.nan_to_num(hist, nan=0.0)
    size = np.maximum(np.abs(filled).mean(axis=1, keepdims=True), 10.0) ** row_power if len(filled) else 1.0
    with threadpool_limits(1, user_api="blas"):  # tiny matrices: BLAS threads only add overhead
        _denoise_into(out, filled / size, dept, rank)
    return out * size


def _denoise_into(out: np.ndarray, filled: np.ndarray, dept: np.ndarray, rank: int) -> None:
    for d in np.unique(dept):
        rows = np.flatnonzero(dept == d)
        m = filled[rows]
        k = min(rank, max(1, len(rows) // 3), m.shape[1])
        if len(rows) <= 1 or k >= min(m.shape):
            out[rows] = m
            continue
        _, vecs = np.linalg.eigh(m @ m.T)
        u = vecs[:, -k:]
        out[rows] = u @ (u.T @ m)


def origin_state(panel: Panel, origin: int, config: FeatureConfig) -> OriginState:
    """Per-series state at `origin` from sales at weeks <= origin only."""
    hist = _window(panel.values, panel.first_week, origin - max(config.svd_weeks, WINDOW) + 1, origin)
    has = np.any(~np.isnan(hist), axis=1) | np.any(
        ~np.isnan(_window(panel.values, panel.first_week, panel.first_week, origin)), axis=1
    )
    tail = hist[:, -52:]
    scale = _nanmean(np.abs(tail))
    fallback = _nanmean(np.abs(hist))
    scale = np.where(np.isnan(scale), fallback, scale)
    scale = np.maximum(np.nan_to_num(scale, nan=1.0), 10.0)
    observed = ~np.isnan(hist)
    last_pos = hist.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    last = np.where(observed.any(axis=1), hist[np.arange(len(hist)), last_pos], np.nan)
    year_ago = _window(panel.values, panel.first_week, origin - 52 - 12, origin - 52)
    svd_hist = hist[:, -config.svd_weeks :] if config.svd_weeks <= hist.shape[1] else hist
    svd = _denoise(svd_hist, panel.dept, config.svd_rank, config.svd_row_power)
    stats = {"last": last, "level13_year_ago": _nanmean(year_ago)}
    for k in (4, 8, 13, 52):
        stats[f"level{k}"] = _nanmean(hist[:, -k:])
    for k in (4, 8, 13):
        stats[f"yoy{k}"] = stats[f"level{k}"] - _nanmean(svd[:, -52 - k : -52])
    # The mean change on the same week a year before, over the weeks both years have (26 at least)
    change = hist[:, -52:] - hist[:, -104:-52]
    stats["yoy52"] = np.where(np.sum(~np.isnan(change), axis=1) >= 26, _nanmean(change), np.nan)
    if svd.shape[1] < WINDOW:  # denoised over fewer weeks than the window holds: unknown before them
        svd = np.concatenate([np.full((len(svd), WINDOW - svd.shape[1]), np.nan), svd], axis=1)
    return OriginState(origin, scale, stats, hist[:, -WINDOW:], svd[:, -WINDOW:], has, panel.dept)


# assembly
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
    X[:, IDX["is_easter"]] = easter & config.easter_features
    X[:, IDX["lag52_is_easter"]] = easter_before & config.easter_features
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


# training rows
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
