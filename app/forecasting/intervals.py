"""Prediction intervals: split-conformal by horizon bucket on out-of-sample residuals.

The residuals come from forecasts made at several origins by a model that never saw their targets
(training.py). Each residual is divided by a size for its row (`interval_denominator`, growing with
the series' scale and last year's value for that week), because a Christmas week's error is large in
dollars but ordinary relative to its level; one set of quantiles then serves every season.

Series err very differently relative to their size, so each residual is also divided by its series'
difficulty (normalised conformal, `fit_difficulty`): how much its history's volatility, week-to-week
change, seasonal naive error and scale predict its error, fitted on the same residuals apart for the
next 13 weeks and for those beyond, where calm and large series err by their level's drift more than
by their week-to-week noise. Calm series then get narrow bands and volatile ones wide.

The difficulty is one log-linear fit through every series, and real series bend away from it: the most
volatile and the smallest err more than it says far out, calm and large ones less. So each series'
cell (its quarter by volatility crossed with its quarter by size among the calibrating series) gets a
factor per horizon bucket on top (Mondrian conformal, `fit_groups`): how much larger the cell's
difficulty-scaled scores run than its bucket's, shrunk toward none when the cell has few rows. Cells
that miss are widened and cells covered too often narrowed, by the held-out errors alone.

Far buckets can be scored only on the weeks a short history reaches (often only November-January,
whose errors run larger at every horizon), so `fit` matches seasons: it measures, on the horizons
scored on every week (1..REFERENCE_HORIZON), how much harder a bucket's mix of weeks is than all of
them and divides that out (`season_factors`). A bucket then says how far out the error grows, not
which weeks happened to be reachable.

The calibrating model saw sales only up to 39 weeks before the end and can be much weaker than the
final model, so `rescale_to` follows a model fitted 13 weeks before the end: its residuals on the
last 13 weeks set buckets 1-4 and 5-13, and the buckets beyond grow from them as the older model's
errors grew. A calibrating model that never learned from a target with last year's week known grows
its errors with the horizon far more than the final model does, so only the UNTRAINED_GROWTH_POWER
root of its growth is kept.

A store total's error has two parts (`fit_totals`, on `StoreTotals`), because a store can sell above
or below all its departments for weeks on end: a lasting one (a store's mean error, relative to its
departments' 80% half-widths, whose spread across stores enters as a normal error per bucket) and a
steady one (the departments' half-widths in quadrature, times a tail measured on past totals at 95%,
heavier than a normal one).

A store total reads its departments' bucket-only half-widths (`plain_quantiles`: the same conformal
fit and rescaling with every series alike, the size alone), not their difficulty-scaled ones: its
error comes from what its departments share, a store's week above or below all of them, which the
difficulty of each department does not tell.

A bucket with fewer than MIN_BUCKET_ROWS residuals takes the nearest calibrated bucket's quantiles
and `fallbacks` names it, so the metadata says which buckets were not calibrated rather than posing
a guessed widening as calibration. docs/model.md explains the choices.

One module over 550 lines on purpose: IntervalCalibrator is one object the artifact stores, and its
bucket quantiles, per-series difficulty, shape and store-total spread are fitted together and read
together by every bound; split apart, each piece would reach into the others' fields.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from app.forecasting.inputs import QUANTILE_RANGE

BUCKETS: tuple[tuple[int, int], ...] = ((1, 4), (5, 13), (14, 26), (27, 39), (40, 52))
LEVELS = (0.8, 0.95)
COLD_START_WIDEN = 1.5
MIN_BUCKET_ROWS = 30  # fewer residuals than this and a bucket's quantiles are noise: it borrows
REFERENCE_HORIZON = 13  # horizons scored on every week after the cutoff: the seasons' yardstick
UNTRAINED_GROWTH_POWER = 0.25  # share (in log terms) of a first-year calibrating model's growth kept
MIN_TOTAL_STORES = 5  # fewer stores than this with two totals in a bucket, and their spread is noise
NORMAL_Z = {str(lv): NormalDist().inv_cdf(0.5 + lv / 2) for lv in LEVELS}  # two-sided normal quantiles
# Two-sided levels at which each bucket's score distribution is kept (its shape): any quantile of a
# forecast is read from them, the 80% and 95% ones being exactly the bands'.
SHAPE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
# What predicts a series' error, known at the origin (difficulty_features), each as a log ratio.
DIFFICULTY_FEATURES = ("volatility", "week_to_week", "naive_error", "size")
DIFFICULTY_CLIP = 8.0  # a series' difficulty stays within 1/8..8 times the typical one
# Horizons whose difficulty is fitted apart: next weeks' errors follow a series' week-to-week noise,
# those a season out its level's drift, which calm and large series have too.
DIFFICULTY_HORIZONS: tuple[tuple[int, int], ...] = ((1, 13), (14, 52))
# Mondrian cells on top of the difficulty (fit_groups): series by quarter of volatility and of size,
# per horizon bucket. A cell's factor is shrunk toward none by its count of calibration rows: one with
# GROUP_SHRINK_ROWS rows keeps half of its own (in log terms).
GROUP_FEATURES = (DIFFICULTY_FEATURES.index("volatility"), DIFFICULTY_FEATURES.index("size"))
GROUP_QUARTERS = 4
GROUP_SHRINK_ROWS = 2000
# Horizons the cells are measured over: finer than BUCKETS near the origin, where next week errs
# less than the three after it and a 1-4 week quantile would cover it too often.
GROUP_BUCKETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 4), (5, 13), (14, 26), (27, 39), (40, 52))


def bucket_label(lo: int, hi: int) -> str:
    return f"{lo}-{hi}"


BUCKET_LABELS = [bucket_label(lo, hi) for lo, hi in BUCKETS]


def bucket_sort_key(label: object) -> tuple[float, str]:
    """Order bucket labels ("1", "2-4", "5-13", "14-26 wk", "53+") by their first week, not as text
    (which puts "5-13" after "40-52"); labels without a number go last."""
    head = str(label).split("-")[0].split()[0].rstrip("+") if str(label).strip() else ""
    try:
        return float(head), str(label)
    except ValueError:
        return math.inf, str(label)


# The buckets a planner tracks live accuracy by: next week, this month, this quarter, half-year, year.
LAG_BUCKETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 4), (5, 13), (14, 26), (27, 52))
LAG_BUCKET_LABELS = [str(lo) if lo == hi else bucket_label(lo, hi) for lo, hi in LAG_BUCKETS]


def bucket_index(horizon: np.ndarray, buckets: tuple[tuple[int, int], ...] = BUCKETS) -> np.ndarray:
    """The bucket of each horizon (weeks ahead) among `buckets`."""
    edges = np.array([hi for _, hi in buckets[:-1]])
    return np.searchsorted(edges, np.asarray(horizon), side="left")


def lag_bucket(lag: np.ndarray) -> np.ndarray:
    """The label of each lag among LAG_BUCKETS."""
    return np.array(LAG_BUCKET_LABELS)[bucket_index(lag, LAG_BUCKETS)]


def interval_denominator(scale: np.ndarray, base: np.ndarray, mix: float = 0.5) -> np.ndarray:
    """The size each absolute residual is measured against (see the module docstring)."""
    return np.maximum((1 - mix) * np.asarray(scale) + mix * np.abs(np.asarray(base)), 1.0)


def _weighted_quantile(values: np.ndarray, weight: np.ndarray, level: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weight[order])
    return float(values[order][min(len(cum) - 1, np.searchsorted(cum, level * cum[-1]))])


NO_SEASON = {str(lv): 1.0 for lv in LEVELS}  # season factors of a bucket left as its weeks were


def _season_factors(ref_score: np.ndarray, ref_week: np.ndarray, bucket_week: np.ndarray) -> dict[str, float]:
    """How much larger the reference scores are on a bucket's mix of target weeks than on all
    weeks, per level: the reference rows reweighted to the bucket's count of each week."""
    weeks, inverse = np.unique(np.concatenate([ref_week, bucket_week]), return_inverse=True)
    ref, bucket = inverse[: len(ref_week)], inverse[len(ref_week) :]
    wanted = np.bincount(bucket, minlength=len(weeks)).astype(float)
    have = np.bincount(ref, minlength=len(weeks)).astype(float)
    weight = (wanted / np.maximum(have, 1.0))[ref]
    if (weight > 0).sum() < MIN_BUCKET_ROWS or len(ref_score) < MIN_BUCKET_ROWS:
        return dict(NO_SEASON)  # too little overlap to tell the seasons apart
    return {
        str(lv): _weighted_quantile(ref_score, weight, lv) / max(float(np.quantile(ref_score, lv)), 1e-12)
        for lv in LEVELS
    }


def _nearest(bucket: int, candidates: Iterable[int]) -> int:
    """The candidate bucket nearest to `bucket`, the shorter one on a tie."""
    return min(candidates, key=lambda c: (abs(c - bucket), c))


def _lasting_spread(store: np.ndarray, value: np.ndarray) -> float | None:
    """The spread across stores of their mean `value`, less the part the values' own scatter puts into
    a mean of a few weeks (a method-of-moments between-store deviation); None with too few stores."""
    _, inverse, count = np.unique(store, return_inverse=True, return_counts=True)
    mean = np.bincount(inverse, weights=value) / count
    several = count >= 2
    if several.sum() < MIN_TOTAL_STORES:
        return None
    within = (np.bincount(inverse, weights=value**2) - count * mean**2)[several] / (count[several] - 1)
    between = float(np.var(mean[several], ddof=1))
    return math.sqrt(max(between - float(np.mean(within / count[several])), 0.0))


def _conformal_quantiles(sorted_scores: np.ndarray) -> dict[str, float]:
    """The split-conformal quantile of each level: the ceil((n + 1) * level)-th smallest score."""
    n = len(sorted_scores)
    return {str(lv): float(sorted_scores[min(n - 1, math.ceil((n + 1) * lv) - 1)]) for lv in LEVELS}


def _shape(sorted_scores: np.ndarray) -> list[float]:
    """The scores' conformal quantiles at SHAPE_LEVELS, each over their 80% one (all ones when it is
    zero)."""
    n = len(sorted_scores)
    q = np.array([sorted_scores[min(n - 1, max(0, math.ceil((n + 1) * lv) - 1))] for lv in SHAPE_LEVELS])
    at80 = q[SHAPE_LEVELS.index(0.8)]
    return [1.0] * len(SHAPE_LEVELS) if at80 <= 0 else [round(float(v / at80), 6) for v in q]


def _key(*columns: np.ndarray) -> np.ndarray:
    """One integer per distinct combination of the integer columns' values."""
    if not len(columns[0]):
        return np.zeros(0, dtype=np.int64)
    shifted = [np.asarray(c, dtype=np.int64) - int(np.min(c)) for c in columns]
    return np.ravel_multi_index(shifted, [int(c.max()) + 1 for c in shifted])


def difficulty_features(raw: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per series, from its sales up to the origin (`raw`, oldest week first) and its `scale`: the log
    of its coefficient of variation over the last 52 weeks, of its median week-to-week change, of the
    seasonal naive's mean error on its last 13 weeks (each relative to its scale) and of its scale.
    NaN where the history does not tell (the calibrator fills in its typical value)."""
    raw = np.asarray(raw, dtype=float)
    scale = np.maximum(np.asarray(scale, dtype=float), 1.0)
    out = np.full((len(raw), len(DIFFICULTY_FEATURES)), np.nan)
    if not len(raw):
        return out
    tail = raw[:, -52:]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN, filled in later
        out[:, 0] = np.nanstd(tail, axis=1) / scale
        out[:, 1] = np.nanmedian(np.abs(np.diff(tail, axis=1)), axis=1) / scale
        if raw.shape[1] >= 52 + 13:
            naive = np.abs(raw[:, -13:] - raw[:, -52 - 13 : -52])
            out[:, 2] = np.nanmean(naive, axis=1) / scale
        out[:, 3] = scale
        return np.log(np.maximum(out, 1e-3))


@dataclass(frozen=True)
class StoreTotals:
    """One model's out-of-sample store totals (a store's week forecast from one origin), summed once
    from their rows; `run` numbers a store's totals from one origin, which share its lasting error."""

    run: np.ndarray
    bucket: np.ndarray
    error: np.ndarray
    size: np.ndarray  # the rows' 80% half-widths summed
    quadrature: np.ndarray  # and in quadrature
    key: np.ndarray  # the store (or other key) each total is of

    @classmethod
    def of_rows(
        cls,
        store: np.ndarray,
        week: np.ndarray,
        horizon: np.ndarray,
        residual: np.ndarray,
        half80: np.ndarray,
    ) -> StoreTotals:
        """Rows of a store's target week `horizon` weeks ahead, forecast from the week less the horizon."""
        store, week, horizon = (np.asarray(a, dtype=np.int64) for a in (store, week, horizon))
        origin = week - horizon
        _, first, total = np.unique(_key(store, origin, week), return_index=True, return_inverse=True)
        _, run = np.unique(_key(store[first], origin[first]), return_inverse=True)
        h = np.asarray(half80, dtype=float)
        return cls(
            run=run,
            bucket=bucket_index(horizon[first]),
            error=np.bincount(total, weights=np.asarray(residual, dtype=float)),
            size=np.maximum(np.bincount(total, weights=h), 1e-12),  # a zero width must not divide
            quadrature=np.maximum(np.sqrt(np.bincount(total, weights=h**2)), 1e-12),
            key=store[first],
        )

    def steady_scores(self) -> np.ndarray:
        """Each total's error less its run's lasting part (the run's mean error per half-width, scaled
        up for the share of its own week that mean holds), over its rows' half-widths in quadrature;
        runs of one total are left out."""
        count = np.bincount(self.run)
        lasting = (np.bincount(self.run, weights=self.error / self.size) / np.maximum(count, 1))[self.run]
        n = count[self.run]
        several = n >= 2
        steady = (self.error - lasting * self.size)[several] * np.sqrt(n[several] / (n[several] - 1))
        return np.abs(steady) / self.quadrature[several]


@dataclass
class IntervalCalibrator:
    """Quantiles of |residual| / denominator per horizon bucket and level."""

    mix: float = 0.5
    quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # bucket -> where its quantiles came from
    season_factors: dict[str, dict[str, float]] = field(default_factory=dict)
    # Store totals, per bucket: the spread across stores of their lasting error, relative to the sum of
    # their departments' 80% half-widths (fit_totals; 0: the departments' errors as if independent).
    total_spread: dict[str, float] = field(default_factory=dict)
    total_tail: dict[str, float] = field(default_factory=dict)  # a level's steady error / the 80% one
    skill_factors: dict[str, float] = field(default_factory=dict)  # rescale_to's factor per level
    # Totals of the chain, a department and a store, each calibrated on its own level's held-out totals
    # (app/forecasting/totals.py: level -> quantiles, counts and fallbacks per bucket).
    level_totals: dict[str, dict] = field(default_factory=dict)
    # Normalised conformal (fit_difficulty): a series' scores are divided by exp(features @ coef -
    # center), its difficulty, with coef and center per DIFFICULTY_HORIZONS group; no coefficients:
    # every series alike.
    difficulty_coef: list[list[float]] = field(default_factory=list)
    difficulty_center: list[float] = field(default_factory=list)
    difficulty_fill: list[float] = field(default_factory=list)  # a feature's value where unknown
    difficulty_range: list[list[float]] = field(default_factory=list)  # [low, high] seen per feature
    # Per bucket, the scores' quantiles at SHAPE_LEVELS over their 80% one: the rest of the distribution
    shape: dict[str, list[float]] = field(default_factory=dict)
    # Bucket-only conformal quantiles (the size alone, no difficulty), fitted and rescaled alike: what a
    # store total reads of its departments (total_half80) and the yardstick the scores are compared to.
    plain_quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    # Mondrian correction (fit_groups): the quarter edges of each GROUP_FEATURES feature over the
    # calibrating series, and per bucket a factor per cell (volatility quarter x size quarter) that a
    # series' difficulty is multiplied by. Tuples, so an artifact pickled without them reads none.
    group_edges: tuple = ()
    group_factors: tuple = ()

    def fit_difficulty(
        self, horizon: np.ndarray, residual: np.ndarray, denominator: np.ndarray, features: np.ndarray
    ) -> IntervalCalibrator:
        """Learn how a series' error grows with its difficulty features: per DIFFICULTY_HORIZONS group, a
        least-squares fit of the log score on them (with a constant per horizon bucket), so that dividing
        each score by its fitted difficulty leaves scores alike across series and one quantile serves
        calm and volatile ones; a group with too few rows takes the nearest fitted group's."""
        features = np.asarray(features, dtype=float)
        horizon = np.asarray(horizon)
        score = np.abs(np.asarray(residual, dtype=float)) / np.asarray(denominator, dtype=float)
        self.difficulty_coef, self.difficulty_center = [], []
        self.difficulty_fill, self.difficulty_range = [], []
        if len(score) < MIN_BUCKET_ROWS * 10 or not np.any(score > 0):
            return self
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature no series has: filled with 0
            fill = np.nanmedian(features, axis=0)
        fill = np.where(np.isnan(fill), 0.0, fill)
        self.difficulty_fill = [round(float(v), 6) for v in fill]
        x = np.where(np.isnan(features), fill, features)
        self.difficulty_range = [
            [round(float(lo), 6), round(float(hi), 6)]
            for lo, hi in zip(np.quantile(x, 0.005, axis=0), np.quantile(x, 0.995, axis=0), strict=True)
        ]
        x = self._clipped(x)
        floor = 0.01 * float(np.median(score[score > 0]))
        target = np.log(np.maximum(score, floor))
        dummies = (bucket_index(horizon)[:, None] == np.arange(len(BUCKETS))).astype(float)
        group = bucket_index(horizon, DIFFICULTY_HORIZONS)
        fitted: dict[int, tuple[list[float], float]] = {}
        for g in range(len(DIFFICULTY_HORIZONS)):
            rows = group == g
            if rows.sum() < MIN_BUCKET_ROWS * 10:
                continue
            d = dummies[rows]
            design = np.column_stack([d[:, d.any(axis=0)], x[rows]])
            coef = np.linalg.lstsq(design, target[rows], rcond=None)[0][-x.shape[1] :]
            fitted[g] = ([round(float(c), 6) for c in coef], round(float(np.mean(x[rows] @ coef)), 6))
        if not fitted:
            return self
        for g in range(len(DIFFICULTY_HORIZONS)):
            coef, center = fitted[_nearest(g, fitted)]
            self.difficulty_coef.append(coef)
            self.difficulty_center.append(center)
        return self

    def _clipped(self, x: np.ndarray) -> np.ndarray:
        lo, hi = np.array(self.difficulty_range).T
        return np.clip(x, lo, hi)

    def difficulty(self, features: np.ndarray, horizon: np.ndarray) -> np.ndarray:
        """Each row's difficulty at its horizon (1 for a typical series; all ones before
        fit_difficulty), times its cell's factor once fit_groups has run."""
        features = np.asarray(features, dtype=float)
        if not self.difficulty_coef:
            return np.ones(len(features))
        x = self._filled(features)
        horizon = np.broadcast_to(np.asarray(horizon), (len(features),))
        group = bucket_index(horizon, DIFFICULTY_HORIZONS)
        coef = np.array(self.difficulty_coef)[group]
        log_d = np.einsum("ij,ij->i", x, coef) - np.array(self.difficulty_center)[group]
        d = np.exp(np.clip(log_d, -math.log(DIFFICULTY_CLIP), math.log(DIFFICULTY_CLIP)))
        if self.group_factors:
            d = d * np.array(self.group_factors)[bucket_index(horizon, GROUP_BUCKETS), self._cells(x)]
        return d

    def _filled(self, features: np.ndarray) -> np.ndarray:
        return self._clipped(np.where(np.isnan(features), np.array(self.difficulty_fill), features))

    def _cells(self, x: np.ndarray) -> np.ndarray:
        """Each row's Mondrian cell: its volatility quarter times GROUP_QUARTERS plus its size quarter."""
        vol, size = (
            np.searchsorted(np.array(edges), x[:, j], side="right")
            for edges, j in zip(self.group_edges, GROUP_FEATURES, strict=True)
        )
        return vol * GROUP_QUARTERS + size

    def fit_groups(
        self, horizon: np.ndarray, residual: np.ndarray, denominator: np.ndarray, features: np.ndarray
    ) -> IntervalCalibrator:
        """Mondrian conformal on top of the difficulty: per GROUP_BUCKETS horizon and cell of series
        (quarter by volatility x quarter by size), how much larger the cell's difficulty-scaled scores
        run than those of the served bucket it lies in (the geometric mean of the ratios at 80% and
        95%), shrunk toward none for a cell with few rows. The difficulty regression is one line
        through every series; the cells correct where it bends. A horizon with too few rows takes the
        nearest measured one's factors."""
        self.group_edges, self.group_factors = (), ()
        if not self.difficulty_coef:
            return self
        horizon = np.asarray(horizon)
        x = self._filled(np.asarray(features, dtype=float))
        score = np.abs(np.asarray(residual, dtype=float)) / (
            np.asarray(denominator, dtype=float) * self.difficulty(features, horizon)
        )
        series = np.unique(x[:, list(GROUP_FEATURES)], axis=0)  # one row per series (nearly)
        quarters = np.linspace(0, 1, GROUP_QUARTERS + 1)[1:-1]
        edges = tuple(tuple(float(v) for v in np.quantile(series[:, j], quarters)) for j in range(2))
        self.group_edges = edges
        cell, idx, gidx = self._cells(x), bucket_index(horizon), bucket_index(horizon, GROUP_BUCKETS)
        n_cells = GROUP_QUARTERS**2
        measured: dict[int, list[float]] = {}
        for b, (lo, _) in enumerate(GROUP_BUCKETS):
            rows = gidx == b
            bucket = idx == bucket_index(np.array([lo]))[0]  # the served bucket it lies in
            if rows.sum() < MIN_BUCKET_ROWS * n_cells:
                continue
            pooled = np.quantile(score[bucket], LEVELS)
            factors = []
            for c in range(n_cells):
                s = score[rows & (cell == c)]
                if len(s) < MIN_BUCKET_ROWS or np.any(pooled <= 0):
                    factors.append(1.0)
                    continue
                ratio = float(np.exp(np.mean(np.log(np.maximum(np.quantile(s, LEVELS), 1e-12) / pooled))))
                weight = len(s) / (len(s) + GROUP_SHRINK_ROWS)
                factors.append(round(ratio**weight, 4))
            measured[b] = factors
        if not measured:
            self.group_edges = ()
            return self
        self.group_factors = tuple(tuple(measured[_nearest(b, measured)]) for b in range(len(GROUP_BUCKETS)))
        return self

    def plain_ratio(self, horizon: np.ndarray, level: float) -> np.ndarray:
        """Per row, the bucket-only quantile over the served one at `level` (1 where either is unknown):
        a served half-width over its difficulty, times this, is the bucket-only half-width."""
        idx = bucket_index(np.asarray(horizon))
        if not self.plain_quantiles or not self.quantiles:
            return np.ones(len(idx))
        served = np.array([self.quantiles[b][str(level)] for b in BUCKET_LABELS])
        plain = np.array([self.plain_quantiles[b][str(level)] for b in BUCKET_LABELS])
        return np.where(served > 0, plain / np.where(served > 0, served, 1.0), 1.0)[idx]

    def plain_half_width(
        self, horizon: np.ndarray, half: np.ndarray, difficulty: np.ndarray, level: float = 0.8
    ) -> np.ndarray:
        """The bucket-only conformal half-width at `level` of rows whose served one (upper - prediction)
        is `half`: what a store total reads of its departments, and the yardstick of the scores."""
        return (
            np.asarray(half, dtype=float)
            / np.asarray(difficulty, dtype=float)
            * self.plain_ratio(horizon, level)
        )

    def fit(
        self,
        horizon: np.ndarray,
        residual: np.ndarray,
        denominator: np.ndarray,
        target_week: np.ndarray | None = None,
    ) -> IntervalCalibrator:
        """Conformal quantiles per bucket, season-matched when target weeks are given; a bucket with
        too few residuals borrows (see the module docstring)."""
        horizon = np.asarray(horizon)
        score = np.abs(np.asarray(residual)) / np.asarray(denominator)
        idx = bucket_index(horizon)
        self.quantiles, self.counts, self.fallbacks, self.season_factors = {}, {}, {}, {}
        self.shape = {}
        if target_week is not None:
            week, near = np.asarray(target_week), horizon <= REFERENCE_HORIZON
        for b, label in enumerate(BUCKET_LABELS):
            s = np.sort(score[idx == b])
            self.counts[label] = int(len(s))
            if len(s) < MIN_BUCKET_ROWS:
                continue
            f = None if target_week is None else _season_factors(score[near], week[near], week[idx == b])
            self._calibrate_bucket(label, s, f)
            self.shape[label] = _shape(s)
        calibrated = [b for b, label in enumerate(BUCKET_LABELS) if label in self.quantiles]
        for b, label in enumerate(BUCKET_LABELS):
            if label in self.quantiles:
                continue
            if calibrated:  # the nearest calibrated bucket (the shorter one on a tie), as it is
                source = BUCKET_LABELS[_nearest(b, calibrated)]
                self.quantiles[label] = dict(self.quantiles[source])
                self.shape[label] = list(self.shape[source])
                self.fallbacks[label] = source
            else:  # too few residuals in every bucket: all of them pooled
                pooled = _conformal_quantiles(np.sort(score)) if len(score) else None
                self.quantiles[label] = pooled or {str(lv): 1.0 for lv in LEVELS}
                self.shape[label] = _shape(np.sort(score)) if len(score) else _shape(np.ones(1))
                self.fallbacks[label] = "all horizons"
        self.quantiles = {label: self.quantiles[label] for label in BUCKET_LABELS}
        return self

    def _calibrate_bucket(
        self, label: str, sorted_scores: np.ndarray, factors: dict[str, float] | None
    ) -> None:
        """A bucket's conformal quantiles divided by its season factors, which are recorded (None: not
        season-matched, nothing recorded)."""
        q = _conformal_quantiles(sorted_scores)
        if factors is not None:
            q = {lv: v / factors[lv] for lv, v in q.items()}
            self.season_factors[label] = {lv: round(v, 4) for lv, v in factors.items()}
        self.quantiles[label] = q

    def rescale_to(
        self,
        new_score: np.ndarray,
        old_score: np.ndarray,
        new_horizon: np.ndarray | None = None,
        growth_power: float = 1.0,
        new_week: np.ndarray | None = None,
        reference: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> IntervalCalibrator:
        """Follow a newer model's scores (training.skill_rescale): every quantile scaled by how much
        smaller they are than the calibrated model's on the same rows; with their horizons, the
        buckets they fill take their own quantiles, season-matched to the calibrating model's
        `reference` (scores, target weeks) when given with the `new_week`s, and the later buckets grow
        from those as the calibrated model's did, raised to `growth_power` (see the module docstring)."""
        if len(new_score) < MIN_BUCKET_ROWS or len(old_score) < MIN_BUCKET_ROWS:
            return self
        factor = {
            str(lv): float(np.quantile(new_score, lv)) / max(float(np.quantile(old_score, lv)), 1e-12)
            for lv in LEVELS
        }
        old_quantiles = self.quantiles
        self.quantiles = {b: {lv: v * factor[lv] for lv, v in q.items()} for b, q in old_quantiles.items()}
        self.skill_factors = {lv: round(v, 4) for lv, v in factor.items()}
        if new_horizon is None:
            return self
        # The buckets the newer model reaches take its own quantiles; the buckets past them grow from
        # the farthest of those as the calibrating model's errors grew (never shrinking).
        idx = bucket_index(np.asarray(new_horizon))
        last = None
        for b, label in enumerate(BUCKET_LABELS):
            s = np.sort(new_score[idx == b])
            if len(s) >= MIN_BUCKET_ROWS:
                f = NO_SEASON
                if reference is not None and new_week is not None:
                    f = _season_factors(*reference, np.asarray(new_week)[idx == b])
                self._calibrate_bucket(label, s, f)
                self.shape[label] = _shape(s)
                last = label
            elif last is not None:
                growth = {
                    lv: (old_quantiles[label][lv] / old_quantiles[last][lv]) ** growth_power
                    for lv in old_quantiles[last]
                }
                nearest = self.quantiles[last]
                self.quantiles[label] = {lv: v * max(1.0, growth[lv]) for lv, v in nearest.items()}
        return self

    def fit_totals(self, totals: StoreTotals, tail_also: Sequence[StoreTotals] = ()) -> IntervalCalibrator:
        """How far stores' totals stray for weeks on end, per horizon bucket, from `totals` (a bucket
        without enough stores takes the nearest measured one's spread), and how heavy the tail of
        their week-to-week errors is, from them and `tail_also` (see the module docstring)."""
        relative = totals.error / totals.size
        measured = {}
        for b in range(len(BUCKETS)):
            spread = _lasting_spread(totals.run[totals.bucket == b], relative[totals.bucket == b])
            if spread is not None:
                measured[b] = spread
        self.total_spread = {}
        if measured:
            for b, label in enumerate(BUCKET_LABELS):
                self.total_spread[label] = round(measured[_nearest(b, measured)], 4)
        steady = [sample.steady_scores() for sample in (totals, *tail_also)]
        pooled = np.concatenate(
            [s / np.quantile(s, 0.8) for s in steady if len(s) >= MIN_BUCKET_ROWS] or [[]]
        )
        self.total_tail = (
            {} if len(pooled) < MIN_BUCKET_ROWS else {"0.95": round(float(np.quantile(pooled, 0.95)), 4)}
        )
        return self

    def total_half_width(self, half80: np.ndarray, horizon: int, level: float) -> float:
        """Half-width of a store total at `horizon` from its departments' 80% half-widths: theirs in
        quadrature (times the measured tail at 95%) plus the stores' lasting spread as a normal error."""
        h = np.asarray(half80, dtype=float)
        size, quadrature = np.array([np.sum(h)]), np.array([np.sqrt(np.sum(h**2))])
        return float(self.lasting_and_steady(size, quadrature, np.array([horizon]), level)[0])

    def lasting_and_steady(
        self, size: np.ndarray, quadrature: np.ndarray, horizon: np.ndarray, level: float
    ) -> np.ndarray:
        """total_half_width of many totals from what it reads of their rows' 80% half-widths: their
        sum (`size`) and their `quadrature` (0 spread and a normal tail where never measured)."""
        labels = np.array(BUCKET_LABELS)[bucket_index(np.asarray(horizon, dtype=np.int64))]
        spread = np.array([self.total_spread.get(label, 0.0) for label in labels])
        tail = self.total_tail.get(str(level), NORMAL_Z[str(level)] / NORMAL_Z["0.8"])
        steady = tail * np.asarray(quadrature, dtype=float)
        return np.hypot(steady, NORMAL_Z[str(level)] * spread * np.asarray(size, dtype=float))

    def bounds(
        self,
        horizon: np.ndarray,
        prediction: np.ndarray,
        denominator: np.ndarray,
        cold: np.ndarray | None = None,
        floor: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """lower_80, upper_80, lower_95, upper_95 around the point forecasts; lower bounds no lower than
        `floor` (0 for a series that never sold below 0)."""
        idx = bucket_index(horizon)
        out = {}
        for lv, name in ((0.8, "80"), (0.95, "95")):
            if not self.quantiles:  # not calibrated yet (inside training)
                out[f"lower_{name}"] = out[f"upper_{name}"] = np.full(len(prediction), np.nan)
                continue
            q = np.array([self.quantiles[label][str(lv)] for label in BUCKET_LABELS])[idx]
            half = self._widened(q * denominator, cold)
            lower = prediction - half
            out[f"lower_{name}"] = lower if floor is None else np.maximum(lower, floor)
            out[f"upper_{name}"] = prediction + half
        return out

    @staticmethod
    def _widened(half: np.ndarray, cold: np.ndarray | None) -> np.ndarray:
        return half if cold is None else np.where(cold, half * COLD_START_WIDEN, half)

    def level_score(self, label: str, level: float) -> float:
        """The score a two-sided `level` (0..0.98) calls for in a bucket: the calibrated 80% and 95%
        quantiles at those levels, and between and beyond them the bucket's shape (SHAPE_LEVELS)."""
        q80, q95 = (
            self.quantiles[label]["0.8"],
            max(self.quantiles[label]["0.95"], self.quantiles[label]["0.8"]),
        )
        shape = self.shape.get(label)
        if not shape:  # no shape kept: a normal error's
            shape = [NormalDist().inv_cdf(0.5 + lv / 2) / NORMAL_Z["0.8"] for lv in SHAPE_LEVELS]
        shape = np.maximum.accumulate(np.asarray(shape, dtype=float))
        s = float(np.interp(level, (0.0, *SHAPE_LEVELS), (0.0, *shape)))
        s95 = shape[SHAPE_LEVELS.index(0.95)]
        if level <= 0.8:
            return q80 * s
        if level <= 0.95:
            share = (s - 1.0) / (s95 - 1.0) if s95 > 1.0 else (level - 0.8) / 0.15
            return q80 + (q95 - q80) * share
        return q95 * (s / s95 if s95 > 0 else 1.0)

    def quantile(
        self,
        q: float,
        horizon: np.ndarray,
        prediction: np.ndarray,
        denominator: np.ndarray,
        cold: np.ndarray | None = None,
        floor: np.ndarray | None = None,
    ) -> np.ndarray:
        """The `q` quantile (QUANTILE_RANGE) of each forecast: the point forecast moved by the score of
        the two-sided level |2q - 1| times the row's denominator, down for q below 0.5; the 0.1 and 0.9
        quantiles are the 80% band's ends, and the quantiles rise with q."""
        per_bucket = self._bucket_scores(q)
        prediction = np.asarray(prediction, dtype=float)
        if per_bucket is None:
            return np.full(len(prediction), np.nan)
        half = self._widened(per_bucket[bucket_index(horizon)] * denominator, cold)
        return _moved(q, prediction, half, floor)

    def band_quantile(
        self,
        q: float,
        horizon: np.ndarray,
        prediction: np.ndarray,
        upper_80: np.ndarray,
        floor: np.ndarray | None = None,
    ) -> np.ndarray:
        """The `q` quantile of rows known only by their point forecast and 80% band (a published run's
        stored rows): the band's half-width (upper_80 less the prediction, never floored) times the
        level's score over the 80% one in its bucket, which is what `quantile` gives the same rows."""
        per_bucket = self._bucket_scores(q)
        prediction = np.asarray(prediction, dtype=float)
        if per_bucket is None:
            return np.full(len(prediction), np.nan)
        q80 = np.array([self.quantiles[label]["0.8"] for label in BUCKET_LABELS])
        ratio = np.divide(per_bucket, q80, out=np.ones(len(q80)), where=q80 > 0)
        half = (np.asarray(upper_80, dtype=float) - prediction) * ratio[bucket_index(horizon)]
        return _moved(q, prediction, half, floor)

    def _bucket_scores(self, q: float) -> np.ndarray | None:
        """Each horizon bucket's score at the two-sided level |2q - 1| of quantile `q` (None before
        calibration); ValueError for a q outside QUANTILE_RANGE."""
        if not QUANTILE_RANGE[0] <= q <= QUANTILE_RANGE[1]:
            raise ValueError(f"quantile {q} outside {QUANTILE_RANGE[0]}..{QUANTILE_RANGE[1]}")
        if not self.quantiles:
            return None
        level = round(abs(2 * q - 1), 10)
        return np.array([self.level_score(label, level) for label in BUCKET_LABELS])

    @classmethod
    def from_metadata(cls, intervals: dict) -> IntervalCalibrator:
        """The bucket quantiles and shapes of a model's metadata `intervals` (to_dict): enough to read
        any quantile from its stored bands (band_quantile); KeyError when they are missing."""
        quantiles, shape = intervals["quantiles"], intervals.get("shape") or {}
        if set(quantiles) != set(BUCKET_LABELS):
            raise KeyError("quantiles")
        return cls(quantiles=quantiles, shape=shape)

    def to_dict(self) -> dict:
        return {
            "method": "normalised split-conformal by horizon bucket",
            "mix": self.mix,
            "quantiles": self.quantiles,
            "counts": self.counts,
            "fallbacks": self.fallbacks,
            "season_factors": self.season_factors,
            "total_spread": self.total_spread,
            "total_tail": self.total_tail,
            "skill_factors": self.skill_factors,
            "level_totals": getattr(self, "level_totals", {}),
            "difficulty": {
                "features": list(DIFFICULTY_FEATURES),
                "horizons": [bucket_label(lo, hi) for lo, hi in DIFFICULTY_HORIZONS],
                "coef": self.difficulty_coef,
                "center": self.difficulty_center,
                "fill": self.difficulty_fill,
                "range": self.difficulty_range,
                "group_edges": [list(e) for e in self.group_edges],
                "group_factors": {
                    bucket_label(lo, hi): list(f)
                    for (lo, hi), f in zip(GROUP_BUCKETS, self.group_factors, strict=False)
                },
            },
            "shape_levels": list(SHAPE_LEVELS),
            "shape": self.shape,
            "plain_quantiles": self.plain_quantiles,
        }


def _moved(q: float, prediction: np.ndarray, half: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """The forecast moved up by `half` for q at or above 0.5, else down (stopping at `floor`)."""
    if q >= 0.5:
        return prediction + half
    lower = prediction - half
    return lower if floor is None else np.maximum(lower, floor)
