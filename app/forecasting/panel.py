"""Sales as a dense series x week matrix: the one shape every feature, backtest and forecast reads."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.forecasting import calendar


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

    @functools.cached_property
    def _key_index(self) -> tuple[np.ndarray, np.ndarray]:
        """store*1000+dept of every row, sorted, and the rows in that order (built on first use)."""
        keys = self.store.astype(np.int64) * 1000 + self.dept.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        return keys[order], order

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Rows of store*1000+dept keys (-1 where the panel has no such series), vectorised: a dict
        lookup per row would cost seconds per million rows of a forecast run."""
        keys = np.asarray(keys, dtype=np.int64)
        sorted_keys, order = self._key_index
        if not len(sorted_keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == keys, order[pos], -1)

    def values_at(self, store: np.ndarray, dept: np.ndarray, week: np.ndarray) -> np.ndarray:
        """Sales of each (store, dept, week index) the panel holds; NaN where it holds none."""
        row = self.positions(np.asarray(store, dtype=np.int64) * 1000 + np.asarray(dept, dtype=np.int64))
        col = np.asarray(week, dtype=np.int64) - self.first_week
        held = (row >= 0) & (col >= 0) & (col < self.values.shape[1])
        out = np.full(len(row), np.nan)
        out[held] = self.values[row[held], col[held]]
        return out

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

    def merged(self, sales: pd.DataFrame, week: np.ndarray) -> Panel:
        """This panel grown to the newest week and to new series, with `sales` (at absolute `week`)
        written over it."""
        key = sales["store"].to_numpy(np.int64) * 1000 + sales["dept"].to_numpy(np.int64)
        old_key = self.store * 1000 + self.dept
        keys = np.union1d(old_key, key)
        last = max(self.last_week, int(week.max()))
        values = np.full((len(keys), last - self.first_week + 1), np.nan)
        values[np.searchsorted(keys, old_key), : self.values.shape[1]] = self.values
        values[np.searchsorted(keys, key), week - self.first_week] = sales["weekly_sales"].to_numpy(float)
        return Panel(store=keys // 1000, dept=keys % 1000, first_week=self.first_week, values=values)


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
