"""Forecasts for a store-department with no sales history: a new department in a known store.

Such a series has nothing of its own to learn from, so it borrows: the store's weekly level, the share
of a store that the department usually takes across the chain, and the department's seasonal profile.
"""

from __future__ import annotations

import warnings

import numpy as np

from app.forecasting.origin_state import OriginState
from app.forecasting.panel import Panel


class ColdStart:
    """Store levels, department shares and seasonal profiles, computed once per origin."""

    def __init__(self, panel: Panel, state: OriginState) -> None:
        self.origin = state.origin
        self.window = state.window
        level = state.stats["level52"]
        window = state.raw[:, -52:]
        stores = np.array(sorted({int(s) for s in np.unique(panel.store[state.has_history])}), dtype=np.int64)
        self.stores = stores
        store_level = np.zeros(len(stores))
        for k, s in enumerate(stores):
            rows = panel.store == s
            store_level[k] = float(np.nanmean(np.nansum(window[rows], axis=0))) if rows.any() else np.nan
        self.store_level = store_level
        spos = np.clip(np.searchsorted(stores, panel.store), 0, max(len(stores) - 1, 0))
        share = level / store_level[spos] if len(stores) else np.full(len(level), np.nan)
        depts = np.unique(panel.dept)
        self.depts = depts
        self.dept_share = np.array(
            [
                np.nanmedian(share[panel.dept == d]) if np.isfinite(share[panel.dept == d]).any() else np.nan
                for d in depts
            ]
        )
        self.default_share = float(np.nanmedian(share)) if np.isfinite(share).any() else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = state.raw / level[:, None]
        profile = np.ones((len(depts), state.window))
        for k, d in enumerate(depts):
            r = ratio[panel.dept == d]
            if np.isfinite(r).any():
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # weeks where no store sold
                    med = np.nanmedian(np.where(np.isfinite(r), r, np.nan), axis=0)
                profile[k] = np.where(np.isfinite(med), med, 1.0)
        self.dept_profile = profile

    def predict(self, store: np.ndarray, dept: np.ndarray, week: np.ndarray) -> np.ndarray:
        """Sales of (store, dept, week) rows: the store's level x the department's share x its season."""
        sp = np.searchsorted(self.stores, store)
        level = self.store_level[np.clip(sp, 0, len(self.stores) - 1)]
        dp = np.searchsorted(self.depts, dept)
        dpc = np.clip(dp, 0, len(self.depts) - 1)
        known = self.depts[dpc] == dept
        share = np.where(known, self.dept_share[dpc], self.default_share)
        share = np.where(np.isfinite(share), share, self.default_share)
        col = np.clip(week - 52 - (self.origin - self.window + 1), 0, self.window - 1)
        season = np.where(known, self.dept_profile[dpc, col], 1.0)
        return np.nan_to_num(share * level * season, nan=0.0)
