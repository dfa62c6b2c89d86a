"""What a forecast from one origin week needs from past sales, per series, computed once per origin.

Levels, the last value, the series scale and a window of raw and denoised history: the denoising (a low
rank per department across stores) is where the competition's winning method found its accuracy, and
it is the costly step, so training computes it once per origin and serving once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from app.forecasting.feature_config import FeatureConfig
from app.forecasting.panel import Panel

WINDOW = 106  # weeks of history in an origin state: lags 51..53 and the week two years before, aligned


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
        """Weeks of history held."""
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
    # Weeks before the data's first have no sales, not zero sales: the low rank fills them with about
    # zero, which a change on last year (yoy) would read as a year-before level of nothing.
    before_data = panel.first_week - (origin - svd.shape[1] + 1)
    if before_data > 0:
        svd[:, :before_data] = np.nan
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
