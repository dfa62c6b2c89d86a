"""train(): metadata for the registry and monitoring, params overrides, the training window."""

import json
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from app.forecasting.estimators import DAMPING_CHOICES, DEFAULT_PARAMS
from app.forecasting.features import FEATURE_NAMES
from app.forecasting.forecaster import MAX_HORIZON, Forecaster
from app.forecasting.holdout import (
    HOLDOUT_WEEKS,
    actual_rows,
    calibration_origins,
    choose_damping,
    forecast_actuals,
    truncate,
    wmae,
)
from app.forecasting.panel import Panel, sample_series
from app.forecasting.training import limit_training_threads, split_params, train, training_threads
from tests.helpers.training import TINY_TRAIN_PARAMS


def test_metadata_has_everything_monitoring_needs(small_artifact):
    meta = small_artifact.metadata
    assert meta["kind"] == "hgb"
    assert [f["name"] for f in meta["features"]] == FEATURE_NAMES
    assert all({"type", "description", "min", "max"} <= set(f) for f in meta["features"])
    bt = meta["backtest"]
    assert {"wmae", "mae", "baseline_wmae", "coverage_80", "coverage_95", "rows", "by_bucket"} <= set(bt)
    scores = {"coverage_80", "interval_score_80", "interval_score_95", "wql_0.1", "wql_0.5", "wql_0.9"}
    for figures in bt["by_lag_bucket"].values():  # what the model card and monitoring show per lag
        assert scores <= set(figures) and min(figures[k] for k in scores) >= 0
    ref = meta["reference"]
    assert ref["format"] == "seasonal-1" and "prediction" in ref
    assert {"temperature", "cpi", "is_holiday"} <= set(ref["features"])
    assert len(ref["features"]["temperature"]["sample"]) <= 2000
    assert set(meta["residual_quantiles"]) == {"1-4", "5-13", "14-26", "27-39", "40-52"}
    assert meta["feature_importances"]
    json.dumps(meta)


def test_through_sets_the_origin_and_params_override(small_dataset):
    through = small_dataset.last_week - pd.Timedelta(weeks=20)
    trained = train(small_dataset, "hgb", through=through, params=TINY_TRAIN_PARAMS)
    assert trained.forecaster.origin == through
    assert trained.metadata["training_window"]["end"] == through.date().isoformat()
    assert trained.metadata["params"]["max_iter"] == 15 and trained.metadata["params"]["origin_step"] == 8
    assert trained.metadata["data_fingerprint"] == small_dataset.fingerprint()


@pytest.mark.parametrize("kind", ["naive", "linear", "rf"])
def test_comparators_train_through_the_same_code(small_dataset, kind):
    params = {"origin_step": 8, **({"n_estimators": 10, "max_depth": 6} if kind == "rf" else {})}
    trained = train(small_dataset, kind, params=params)
    fc = trained.forecaster
    store = fc.stores()[0]
    preds = fc.forecast(store, fc.departments(store)[0], fc.origin + pd.Timedelta(weeks=1), 8)
    assert len(preds) == 8 and all(np.isfinite(p.prediction) for p in preds)
    assert trained.metadata["kind"] == kind


def test_training_builds_features_for_its_series_sample_only_and_serves_every_series(small_dataset):
    """max_series below the chain's series: the model is the one trained on those series alone, and
    the Forecaster still forecasts every series of the chain."""
    params = {**TINY_TRAIN_PARAMS, "max_series": 12}
    sampled = train(small_dataset, "hgb", params=params)
    panel = Panel.from_sales(small_dataset.sales)
    window = sampled.metadata["training_window"]
    assert window["series"] == len(panel.store) > 12 and window["training_series"] == 12
    rows = sample_series(panel, 12, seed=0)
    keep = set(zip(panel.store[rows].tolist(), panel.dept[rows].tolist(), strict=True))
    sales = small_dataset.sales
    mask = [(s, d) in keep for s, d in zip(sales["store"], sales["dept"], strict=True)]
    alone = train(replace(small_dataset, sales=sales[mask]), "hgb", params={**params, "max_series": 0})
    X = np.random.default_rng(1).normal(size=(50, len(FEATURE_NAMES))).astype(np.float32)
    assert np.array_equal(sampled.forecaster.estimator.predict(X), alone.forecaster.estimator.predict(X))
    assert sampled.metadata["backtest"]["wmae"] == pytest.approx(alone.metadata["backtest"]["wmae"])
    assert len(sampled.forecaster.forecast_all(4)) == len(panel.store) * 4


def test_a_store_opening_after_early_calibration_origins_still_trains(small_dataset):
    """Origins before a store's first sale skip its rows (a series sample makes such stores common)."""
    sales = small_dataset.sales
    opening = sales["date"].min() + pd.Timedelta(weeks=80)
    late = sales[(sales["store"] != 1) | (sales["date"] >= opening)]
    trained = train(replace(small_dataset, sales=late), "hgb", params=TINY_TRAIN_PARAMS)
    assert trained.metadata["backtest"]["rows"] > 0 and 1 in trained.forecaster.stores()


def test_unknown_kind_and_split_params():
    cfg, est = split_params({"align": False, "max_iter": 5})
    assert cfg.align is False and est == {"max_iter": 5}
    with pytest.raises(ValueError, match="unknown model kind"):
        train(None, "xgboost")


def test_damping_is_chosen_out_of_sample_unless_given(small_dataset):
    trained = train(small_dataset, "hgb", params=TINY_TRAIN_PARAMS)
    fc = trained.forecaster
    chosen = trained.metadata["params"]["damping"]
    assert chosen in DAMPING_CHOICES and fc.estimator.params["damping"] == chosen
    # the interpolated scores are those of real damped forecasts, and the best one is chosen
    origin = fc.origin_week - HOLDOUT_WEEKS
    rows = actual_rows(fc.panel, origin, HOLDOUT_WEEKS)
    past = Forecaster(
        estimator=fc.estimator,
        config=fc.config,
        panel=truncate(fc.panel, origin),
        covariates=fc.covariates,
        calibrator=fc.calibrator,
    )
    best, scores = choose_damping(past, rows)
    assert scores[best] == min(scores.values()) and fc.estimator.params["damping"] == chosen
    fc.estimator.params["damping"] = 0.8
    direct = forecast_actuals(past, rows)
    fc.estimator.params["damping"] = chosen
    y = rows["weekly_sales"].to_numpy()
    assert wmae(y, direct["prediction"], direct["holiday"].astype(bool)) == pytest.approx(scores[0.8])
    given = train(small_dataset, "hgb", params={**TINY_TRAIN_PARAMS, "damping": 0.8})
    assert given.metadata["params"]["damping"] == 0.8
    # an inner model fitted within the data's first year did not learn like the final one
    short = train(small_dataset, "hgb", through="2011-09-30", params=TINY_TRAIN_PARAMS)
    assert short.metadata["params"]["damping"] == DEFAULT_PARAMS["hgb"]["damping"]


def test_calibration_origins_reach_back_from_origins_with_a_year_of_history():
    def panel(weeks: int) -> Panel:
        return Panel(np.array([1]), np.array([1]), 10, np.zeros((1, weeks)))

    # 143 weeks (the Walmart span): the backtest origins, and every 4 weeks back to the first origin
    # with 56 weeks of sales, so the weeks after the cutoff are also forecast 40-52 weeks ahead
    cutoff = 10 + 142 - HOLDOUT_WEEKS
    origins = calibration_origins(panel(143), cutoff)
    assert origins == [*range(10 + 55, cutoff, 4), cutoff, cutoff + 13, cutoff + 26]
    assert origins[0] + MAX_HORIZON > cutoff and cutoff - 4 in origins
    # 60 weeks: no origin before the cutoff has a year of history
    cutoff = 10 + 59 - HOLDOUT_WEEKS
    assert calibration_origins(panel(60), cutoff) == [cutoff, cutoff + 13, cutoff + 26]


def test_far_buckets_are_calibrated_on_their_own_residuals(small_artifact, small_dataset):
    intervals = small_artifact.metadata["intervals"]
    assert intervals["fallbacks"] == {} and set(intervals["season_factors"]) == set(intervals["counts"])
    assert all(n >= 200 for n in intervals["counts"].values()), intervals["counts"]
    # the calibrating model had targets with a year before: the recent model's weeks are season-matched
    assert intervals["season_factors"]["5-13"] != {"0.8": 1.0, "0.95": 1.0}
    # ~60 weeks of history: no forecast 40-52 weeks ahead can be scored, so that bucket borrows
    short = train(small_dataset, "hgb", through="2011-03-25", params=TINY_TRAIN_PARAMS)
    intervals = short.metadata["intervals"]
    assert intervals["counts"]["40-52"] == 0 and intervals["fallbacks"] == {"40-52": "27-39"}
    assert intervals["quantiles"]["40-52"] == intervals["quantiles"]["27-39"]
    # and its calibrating model had none: the recent model's weeks keep their own season
    assert intervals["season_factors"]["5-13"] == {"0.8": 1.0, "0.95": 1.0}


def test_training_threads_leave_serving_a_core_and_the_limit_holds_only_inside():
    assert training_threads(3) == 3
    assert training_threads(0) == max(1, (os.cpu_count() or 1) - 1)
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
    assert before, "scikit-learn's OpenMP runtime is loaded"
    with limit_training_threads(1):
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "openmp")
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
    assert after == before
