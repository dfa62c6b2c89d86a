"""Prediction intervals: split-conformal by horizon bucket on out-of-sample residuals.

The residuals come from forecasts made at several origins by a model that never saw their
targets (training.py). One origin alone mixes seasons badly (spring holdout weeks calibrated on
autumn weeks), so each residual is divided by a size for its row, `interval_denominator`, which
grows with both the series' scale and last year's value for that week: a Christmas week's
error is large in dollars but ordinary relative to its level.

The far buckets can only be scored on some of the weeks the near ones are: with two years of
history ending in January, a forecast 40-52 weeks ahead from an origin with a year of history can
only target November-January, whose errors run larger at every horizon. Given each residual's target week,
`fit` therefore matches seasons: it measures, on the horizons that are scored on every week
(1..REFERENCE_HORIZON), how much harder a bucket's own mix of weeks is than all of them, and
divides that out of the bucket's quantile (`season_factors`). A bucket then says how far out
the error grows, not which weeks happened to be reachable.

The model that gives those residuals saw sales up to 39 weeks before the end; in the data's
second year it never had a target with a week a year before, and its errors ran far larger than
the final model's. `rescale_to` therefore follows a model fitted 13 weeks before the end: buckets
1-4 and 5-13 take the quantiles of its own residuals on the last 13 weeks, the buckets beyond grow
from them as the older model's errors grew (training._skill_rescale).

If the older model had any target with a week a year before, it lends its seasons: the last 13
weeks are season-matched to all of its weeks as a far bucket is. At 2012-01-27 they are
November-January, harder than the February-October weeks that follow, and the older model had 12
such targets: 80% intervals covered 82.6% unmatched, 80.1% matched. A model with none has seasons
unlike the final model's (its errors on the last quarter's weeks ran 30-39% below its average; the
final model's did not), and matched that way intervals covered 88% at the two earlier origins.

If the older model learned from targets with a week a year before, as the final one does (13
weeks of them or more), the buckets keep all of its growth; if not, the 4th root of it
(UNTRAINED_GROWTH_POWER). Such a model never learned last year's shape, and its errors grew with
the horizon far more than the final model's: on the real data the final model's 80% score
quantiles in the four buckets were 0.241, 0.253, 0.236 and 0.248 at 2012-01-27. Chosen on the real
data's three backtest origins (2012-01-27 / 2011-10-28 / 2011-07-29), 80% coverage with none of the
growth was 82.2 / 78.0 / 76.5% (27-39 weeks at 2011-07-29: 74.8%), with its 4th root 82.6 / 80.1 /
78.1% (every bucket 75.4-83.6%), its square root 82.9 / 81.9 / 79.7% (85.5% at 27-39 weeks) and all
of it 83.7 / 84.7 / 82.1% (89.7%).

Every bucket is calibrated on its own residuals. A bucket with fewer than MIN_BUCKET_ROWS of them
(a history too short for a forecast that far out to have been scored) takes the quantiles of the
nearest calibrated bucket, and `fallbacks` names it: the metadata says which buckets were not
calibrated, rather than a guessed widening posing as calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BUCKETS: tuple[tuple[int, int], ...] = ((1, 4), (5, 13), (14, 26), (27, 39), (40, 52))
LEVELS = (0.8, 0.95)
COLD_START_WIDEN = 1.5
MIN_BUCKET_ROWS = 30  # fewer residuals than this and a bucket's quantiles are noise: it borrows
REFERENCE_HORIZON = 13  # horizons scored on every week after the cutoff: the seasons' yardstick
UNTRAINED_GROWTH_POWER = 0.25  # share (in log terms) of a first-year calibrating model's growth kept


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


def _conformal_quantiles(sorted_scores: np.ndarray) -> dict[str, float]:
    """The split-conformal quantile of each level: the ceil((n + 1) * level)-th smallest score."""
    n = len(sorted_scores)
    return {str(lv): float(sorted_scores[min(n - 1, math.ceil((n + 1) * lv) - 1)]) for lv in LEVELS}


@dataclass
class IntervalCalibrator:
    """Quantiles of |residual| / denominator per horizon bucket and level."""

    mix: float = 0.5
    quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # bucket -> where its quantiles came from
    season_factors: dict[str, dict[str, float]] = field(default_factory=dict)
    # Store totals: the correlation of the departments' errors, per level, that makes a sum's
    # interval cover its share (0: added in quadrature, as if independent; 1: widths simply added).
    total_correlation: dict[str, float] = field(default_factory=dict)
    skill_factors: dict[str, float] = field(default_factory=dict)  # rescale_to's factor per level

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
        if target_week is not None:
            week, near = np.asarray(target_week), horizon <= REFERENCE_HORIZON
        for b, label in enumerate(BUCKET_LABELS):
            s = np.sort(score[idx == b])
            self.counts[label] = int(len(s))
            if len(s) < MIN_BUCKET_ROWS:
                continue
            f = None if target_week is None else _season_factors(score[near], week[near], week[idx == b])
            self._calibrate_bucket(label, s, f)
        calibrated = [b for b, label in enumerate(BUCKET_LABELS) if label in self.quantiles]
        for b, label in enumerate(BUCKET_LABELS):
            if label in self.quantiles:
                continue
            if calibrated:  # the nearest calibrated bucket (the shorter one on a tie), as it is
                source = BUCKET_LABELS[min(calibrated, key=lambda c: (abs(c - b), c))]
                self.quantiles[label] = dict(self.quantiles[source])
                self.fallbacks[label] = source
            else:  # too few residuals in every bucket: all of them pooled
                pooled = _conformal_quantiles(np.sort(score)) if len(score) else None
                self.quantiles[label] = pooled or {str(lv): 1.0 for lv in LEVELS}
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
        """Follow a newer model's scores (training._skill_rescale): every quantile scaled by how much
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
                last = label
            elif last is not None:
                growth = {
                    lv: (old_quantiles[label][lv] / old_quantiles[last][lv]) ** growth_power
                    for lv in old_quantiles[last]
                }
                nearest = self.quantiles[last]
                self.quantiles[label] = {lv: v * max(1.0, growth[lv]) for lv, v in nearest.items()}
        return self

    def fit_totals(
        self, group: np.ndarray, residual: np.ndarray, half: dict[str, np.ndarray]
    ) -> IntervalCalibrator:
        """The error correlation of each level for sums of rows sharing a `group` (store, week, origin).

        A sum's half-width is sqrt(sum h^2 + rho ((sum h)^2 - sum h^2)); each group needs the rho at
        which its summed residual falls inside, and the level's quantile of those needs is the rho."""
        _, inverse = np.unique(np.asarray(group), return_inverse=True)
        error = np.bincount(inverse, weights=np.asarray(residual)) ** 2
        self.total_correlation = {}
        for lv in LEVELS:
            h = np.asarray(half[str(lv)])
            square = np.bincount(inverse, weights=h**2)
            cross = np.bincount(inverse, weights=h) ** 2 - square
            several = cross > 0
            if several.sum() < MIN_BUCKET_ROWS:
                continue
            need = np.clip((error[several] - square[several]) / cross[several], 0.0, 1.0)
            self.total_correlation[str(lv)] = round(float(np.quantile(need, lv)), 4)
        return self

    def total_half_width(self, half: np.ndarray, level: float) -> float:
        """Half-width of a sum of rows from theirs (fit_totals' correlation; quadrature without it)."""
        rho = getattr(self, "total_correlation", {}).get(str(level), 0.0)
        h = np.asarray(half, dtype=float)
        square = float(np.sum(h**2))
        return float(np.sqrt(square + rho * (float(np.sum(h)) ** 2 - square)))

    def bounds(
        self,
        horizon: np.ndarray,
        prediction: np.ndarray,
        denominator: np.ndarray,
        cold: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """lower_80, upper_80, lower_95, upper_95 around the point forecasts."""
        idx = bucket_index(horizon)
        out = {}
        for lv, name in ((0.8, "80"), (0.95, "95")):
            if not self.quantiles:  # not calibrated yet (inside training)
                out[f"lower_{name}"] = out[f"upper_{name}"] = np.full(len(prediction), np.nan)
                continue
            q = np.array([self.quantiles[label][str(lv)] for label in BUCKET_LABELS])[idx]
            half = q * denominator
            if cold is not None:
                half = np.where(cold, half * COLD_START_WIDEN, half)
            out[f"lower_{name}"] = prediction - half
            out[f"upper_{name}"] = prediction + half
        return out

    def to_dict(self) -> dict:
        return {
            "method": "split-conformal by horizon bucket",
            "mix": self.mix,
            "quantiles": self.quantiles,
            "counts": self.counts,
            "fallbacks": self.fallbacks,
            "season_factors": self.season_factors,
            "total_correlation": getattr(self, "total_correlation", {}),
            "skill_factors": getattr(self, "skill_factors", {}),
        }
