"""The default model and its comparators, all fitted on the same feature matrix.

Every estimator predicts the scaled residual to last year's value (see features.py), so the
comparators differ only in the learner: gradient boosting (default), a RandomForest like the
original project's, a ridge regression, and the seasonal naive (no learning at all).
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
from threadpoolctl import threadpool_limits

from app.forecasting.features import IDX

SMALL_FIT = 100_000

log = logging.getLogger(__name__)

KINDS = ("hgb", "rf", "linear", "naive")

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "hgb": {
        "loss": "absolute_error",
        "max_iter": 300,
        "learning_rate": 0.1,
        "max_leaf_nodes": 63,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "max_features": 1.0,
        "early_stopping": False,
        "random_state": 0,
    },
    # The original project's forest (100 trees, depth 15), fitted on a row subsample so that it
    # trains in minutes rather than hours.
    "rf": {"n_estimators": 100, "max_depth": 15, "n_jobs": 2, "random_state": 0, "max_rows": 150_000},
    "linear": {"alpha": 1.0},
    "naive": {},
}


class Estimator:
    """A fitted learner with a uniform fit/predict over the pipeline's feature matrix."""

    def __init__(self, kind: str, params: dict[str, Any] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.params = {**DEFAULT_PARAMS[kind], **(params or {})}
        self.model: Any = None

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Estimator:
        if self.kind == "naive":
            return self
        empty = ~np.isfinite(X).any(axis=0)
        if empty.any():  # e.g. markdowns before they existed: constant, never split on
            X = X.copy()
            X[:, empty] = 0.0
        if self.kind == "hgb":
            self.model = HistGradientBoostingRegressor(
                **{k: v for k, v in self.params.items() if k != "use_weights"}
            )
            use_weights = self.params.get("use_weights")
            use_weights = len(X) < SMALL_FIT if use_weights is None else use_weights
            # On small data OpenMP threads cost more than they save (and much more on a busy box).
            with threadpool_limits(1 if len(X) < SMALL_FIT else None, user_api="openmp"):
                # Rows were drawn in proportion to their weight (features.build_training_set):
                # the residual weights are near 1, and the weighted median of each leaf would cost
                # more than the rest of the fit.
                self.model.fit(X, y, sample_weight=weight if use_weights else None)
        elif self.kind == "rf":
            params = dict(self.params)
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
                Ridge(alpha=self.params["alpha"]),
            )
            self.model.fit(X, y, ridge__sample_weight=weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scaled residual to the pipeline's base value."""
        if self.kind == "naive":
            # seasonal naive: the same week a year before; fallback the mean of the last 8 weeks
            value = X[:, IDX["lag52"]]
            for alt in ("level8", "last", "base"):
                value = np.where(np.isnan(value), X[:, IDX[alt]], value)
            return (value - X[:, IDX["base"]]).astype(float)
        if self.kind == "rf":
            return self.model.predict(np.nan_to_num(X, nan=-999.0))
        return self.model.predict(X)


def make_estimator(kind: str = "hgb", params: dict[str, Any] | None = None) -> Estimator:
    """An unfitted estimator of `kind` with the default parameters updated by `params`."""
    return Estimator(kind, params)
