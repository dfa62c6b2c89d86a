"""Estimators: the default and comparators share one interface; the fast tree walk is exact."""

import numpy as np
import pytest

from app.forecasting.estimators import KINDS, StackedTrees, make_estimator
from app.forecasting.features import FEATURE_NAMES, IDX


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, IDX["base"]] = np.nan_to_num(X[:, IDX["base"]])  # the pipeline's base is never missing
    y = np.nan_to_num(X[:, IDX["lag52"]]) - np.nan_to_num(X[:, IDX["base"]]) + 0.1 * rng.normal(size=n)
    return X, y, np.ones(n)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fits_and_predicts(kind):
    X, y, w = _data()
    params = {"hgb": {"max_iter": 20}, "rf": {"n_estimators": 5, "max_depth": 5}}.get(kind, {})
    est = make_estimator(kind, params).fit(X, y, w)
    pred = est.predict(X[:50])
    assert pred.shape == (50,) and np.isfinite(pred).all()


def test_seasonal_naive_is_last_year_then_the_8_week_level():
    X = np.full((2, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    X[:, IDX["base"]] = 1.0
    X[0, IDX["lag52"]] = 3.0
    X[1, IDX["level8"]] = 2.0
    out = make_estimator("naive").fit(X, np.zeros(2), np.ones(2)).predict(X)
    assert list(out) == [2.0, 1.0]  # residual to base: 3 - 1, 2 - 1


def test_stacked_trees_match_sklearn():
    X, y, w = _data(5000, seed=1)
    est = make_estimator("hgb", {"max_iter": 40, "max_leaf_nodes": 15}).fit(X, y, w)
    stacked = StackedTrees(est.model)
    assert np.allclose(stacked.predict(X[:500]), est.model.predict(X[:500]))
    assert est.stacked is not None


def test_unknown_kind():
    with pytest.raises(ValueError):
        make_estimator("xgboost")


def test_learned_correction_is_applied_damped():
    X, y, w = _data()
    full = make_estimator("hgb", {"max_iter": 20, "damping": 1.0}).fit(X, y, w).predict(X[:50])
    damped = make_estimator("hgb", {"max_iter": 20, "damping": 0.6}).fit(X, y, w).predict(X[:50])
    assert np.allclose(damped, 0.6 * full)
    naive = make_estimator("naive", {"damping": 0.6}).predict(X[:50])
    assert np.allclose(naive, make_estimator("naive").predict(X[:50]), equal_nan=True)


def _in_season(X, rows):
    X[rows, IDX["weeks_to_thanksgiving"]] = 0.0  # Thanksgiving week
    X[rows, IDX["weeks_to_christmas"]] = 4.0
    X[rows, IDX["lag_aligned"]] = 1.0


def test_no_correction_for_a_holiday_season_the_learner_never_saw():
    X, y, w = _data()
    X[:, IDX["weeks_to_thanksgiving"]] = 20.0  # every training target is months before Thanksgiving
    est = make_estimator("hgb", {"max_iter": 20}).fit(X, y, w)
    assert not est.saw_holiday_season
    query = X[:50].copy()
    before = est.predict(query)
    _in_season(query, np.arange(25))
    after = est.predict(query)
    assert (after[:25] == 0).all()
    assert np.allclose(after[25:], before[25:])


def test_a_learner_that_saw_the_holiday_season_corrects_it():
    X, y, w = _data()
    X[:, IDX["weeks_to_thanksgiving"]] = 20.0
    _in_season(X, np.arange(300))
    est = make_estimator("hgb", {"max_iter": 20}).fit(X, y, w)
    assert est.saw_holiday_season
    query = X[:50].copy()
    _in_season(query, np.arange(50))
    assert (est.predict(query) != 0).any()
