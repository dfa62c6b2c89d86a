"""Store x week covariates resolved once, with where each value came from.

A forecast for a future week needs a temperature, a fuel price, markdowns... that nobody knows yet: the
grid fills them from the features table, else the same week a year before, else the last known value,
and records which, so an answer can say what it assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.data import COVARIATE_COLUMNS, Dataset

STORE_TYPES = {"A": 0, "B": 1, "C": 2}
COV_SOURCES = ("features", "last_year", "last_known", "missing", "caller", "calendar")


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
