"""The default model and its comparators, all fitted on the same feature matrix.

Every estimator predicts the scaled residual to the pipeline's base (see features.py), so the
comparators differ only in the learner: gradient boosting (default), a RandomForest like the
original project's, a ridge regression, and the seasonal naive (no learning at all).

A learned correction is applied damped (`damping`, a share of it): on the real data, what the
learners take from one year of targets carries over to the next year only in part, while on data
whose structure is stable (the synthetic default) all of it is worth applying. So train() chooses the
damping among DAMPING_CHOICES on its internal backtest (out of sample, before the origin) when that
backtest's model had targets with a year before; otherwise it keeps DEFAULT_DAMPING.

The correction is not applied at all to a target in the holiday season (Thanksgiving week to
Christmas week) when the learner never saw a target of that season with last year's week known: the
trees would carry corrections learned on spring and summer weeks into the weeks of the year's largest
and least regular sales.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController, threadpool_limits

from app.forecasting.features import IDX

SMALL_FIT = 100_000
STACKED_MAX_ROWS = 64

log = logging.getLogger(__name__)

KINDS = ("hgb", "rf", "linear", "naive")
DAMPING_CHOICES = (0.6, 0.8, 1.0)
DEFAULT_DAMPING = 0.6  # the least that helped on the real data; kept when train() cannot choose

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "hgb": {
        "loss": "absolute_error",
        "max_iter": 200,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "max_features": 1.0,
        "early_stopping": False,
        "random_state": 0,
        "damping": DEFAULT_DAMPING,
    },
    # The original project's forest (depth 15), made to train within minutes on two busy cores: a
    # training takes three fits (the internal backtest's, the interval skill's and the final one), and
    # with 100 trees each grown on every row and every feature it took most of an hour. Fewer trees,
    # each on a bootstrap of a third of the rows and half the features per split, with leaves of a few
    # rows, cost a fraction of that; the learner corrects a base forecast (damped), so it loses little.
    "rf": {
        "n_estimators": 50,
        "max_depth": 15,
        "max_samples": 0.3,
        "max_features": 0.5,
        "min_samples_leaf": 5,
        "n_jobs": 2,
        "random_state": 0,
        "max_rows": 150_000,
        "damping": DEFAULT_DAMPING,
    },
    "linear": {"alpha": 1.0, "damping": DEFAULT_DAMPING},
    "naive": {},
}


_CONTROLLER: ThreadpoolController | None = None


def _single_thread():
    """Limit OpenMP to one thread: for small batches the thread pool costs more than the work
    (on a busy 2-core box, a one-row prediction took 200 ms with two threads, 2 ms with one)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="openmp")


class StackedTrees:
    """All trees of a fitted HistGradientBoostingRegressor as flat arrays, walked level by level
    for every (row, tree) at once: a handful of numpy operations per level instead of one Python
    call per tree, which is what makes single-row predictions fast."""

    def __init__(self, model: HistGradientBoostingRegressor) -> None:
        nodes = [p[0].nodes for p in model._predictors]
        sizes = np.array([len(n) for n in nodes])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = np.concatenate(nodes)
        shift = np.repeat(offsets, sizes)
        self.roots = offsets.astype(np.int64)
        self.feature = flat["feature_idx"].astype(np.int64)
        self.threshold = flat["num_threshold"].astype(float)
        self.missing_left = flat["missing_go_to_left"].astype(bool)
        self.left = flat["left"].astype(np.int64) + shift
        self.right = flat["right"].astype(np.int64) + shift
        self.is_leaf = flat["is_leaf"].astype(bool)
        self.value = flat["value"].astype(float)
        self.depth = int(flat["depth"].max()) if len(flat) else 0
        self.baseline = float(np.ravel(model._baseline_prediction)[0])
        self.usable = not flat["is_categorical"].any()

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        idx = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        for _ in range(self.depth + 1):
            leaf = self.is_leaf[idx]
            if leaf.all():
                break
            x = X[rows, self.feature[idx]]
            go_left = np.where(np.isnan(x), self.missing_left[idx], x <= self.threshold[idx])
            idx = np.where(leaf, idx, np.where(go_left, self.left[idx], self.right[idx]))
        return self.baseline + self.value[idx].sum(axis=1)


class Estimator:
    """A fitted learner with a uniform fit/predict over the pipeline's feature matrix."""

    def __init__(self, kind: str, params: dict[str, Any] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.params = {**DEFAULT_PARAMS[kind], **(params or {})}
        self.model: Any = None
        self.stacked: StackedTrees | None = None
        # Whether the training rows held a holiday season with last year's week: if not, the learner's
        # correction is not trusted there (it never saw one) and the base stands alone.
        self.saw_holiday_season = True

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Estimator:
        if self.kind == "naive":
            return self
        self.saw_holiday_season = bool((holiday_season(X) & ~np.isnan(X[:, IDX["lag_aligned"]])).any())
        empty = ~np.isfinite(X).any(axis=0)
        if empty.any():  # e.g. markdowns before they existed: constant, never split on
            X = X.copy()
            X[:, empty] = 0.0
        if self.kind == "hgb":
            self.model = HistGradientBoostingRegressor(**self._learner_params("use_weights"))
            # Rows were drawn in proportion to their weight (training_set.build_training_set), so the
            # residual weights are near 1 and off by default: with them, sklearn computes weighted
            # percentiles for binning and for every leaf, which costs more than the rest of the fit.
            use_weights = bool(self.params.get("use_weights"))
            # On small data OpenMP threads cost more than they save (and much more on a busy box).
            with threadpool_limits(1 if len(X) < SMALL_FIT else None, user_api="openmp"):
                self.model.fit(X, y, sample_weight=weight if use_weights else None)
            self.stacked = StackedTrees(self.model)
            check = X[: min(len(X), 200)]
            if not (
                self.stacked.usable and np.allclose(self.stacked.predict(check), self.model.predict(check))
            ):
                log.warning("stacked trees disagree with sklearn's predict: using sklearn's")
                self.stacked = None
        elif self.kind == "rf":
            params = self._learner_params()
            max_rows = params.pop("max_rows", None)
            if max_rows and len(X) > max_rows:
                pick = np.random.default_rng(0).choice(len(X), size=max_rows, replace=False)
                X, y, weight = X[pick], y[pick], weight[pick]
            self.model = RandomForestRegressor(**params)
            self.model.fit(np.nan_to_num(X, nan=-999.0), y, sample_weight=weight)
            self.model.n_jobs = 1  # predictions are small batches: threads cost more than they save
        elif self.kind == "linear":
            self.model = make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
                Ridge(alpha=self.params["alpha"], solver="svd"),  # missing-indicator columns can coincide
            )
            self.model.fit(X, y, ridge__sample_weight=weight)
        return self

    def _learner_params(self, *own: str) -> dict[str, Any]:
        """The params that go to the scikit-learn learner (damping and `own` are applied here)."""
        return {k: v for k, v in self.params.items() if k not in ("damping", *own)}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scaled residual to the pipeline's base value."""
        if self.kind == "naive":
            return self._naive(X)
        learned = self.params.get("damping", 1.0) * self._learned(X)
        if not self.saw_holiday_season:
            learned[holiday_season(X)] = 0.0
        return learned

    @staticmethod
    def _naive(X: np.ndarray) -> np.ndarray:
        return seasonal_naive(X) - X[:, IDX["base"]].astype(float)

    def _learned(self, X: np.ndarray) -> np.ndarray:
        if self.kind == "rf":
            return self.model.predict(np.nan_to_num(X, nan=-999.0))
        if self.kind == "hgb" and self.stacked is not None and len(X) <= STACKED_MAX_ROWS:
            return self.stacked.predict(X)
        if len(X) < SMALL_FIT:
            with _single_thread():
                return self.model.predict(X)
        return self.model.predict(X)


def holiday_season(X: np.ndarray) -> np.ndarray:
    """Rows whose target week is Thanksgiving week, Christmas week or a week between them."""
    return (X[:, IDX["weeks_to_thanksgiving"]] <= 0) & (X[:, IDX["weeks_to_christmas"]] >= 0)


def seasonal_naive(X: np.ndarray) -> np.ndarray:
    """Seasonal naive, scaled like X: the same week a year before; fallback the mean of the last 8 weeks."""
    value = X[:, IDX["lag52"]]
    for alt in ("level8", "last", "base"):
        value = np.where(np.isnan(value), X[:, IDX[alt]], value)
    return value.astype(float)


def make_estimator(kind: str = "hgb", params: dict[str, Any] | None = None) -> Estimator:
    """An unfitted estimator of `kind` with the default parameters updated by `params`."""
    return Estimator(kind, params)
