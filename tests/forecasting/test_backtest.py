"""The honest backtest: figures, predictions, folds, coverage; the real data when present."""

import os

import numpy as np
import pandas as pd
import pytest

from app.forecasting.backtest import PREDICTION_COLUMNS, run_backtest
from tests.helpers.data import REAL_DATA_DIR
from tests.helpers.training import TINY_TRAIN_PARAMS

TINY = {**TINY_TRAIN_PARAMS, "max_iter": 30}


@pytest.fixture(scope="module")
def result(small_dataset):
    origin = small_dataset.last_week - pd.Timedelta(weeks=39)
    return run_backtest(small_dataset, origin, 39, folds=2, params=TINY)


def test_figures_and_predictions(result, small_dataset):
    d = result.to_dict()
    for key in (
        "wmae",
        "mae",
        "baseline_wmae",
        "coverage_80",
        "coverage_95",
        "rows",
        "by_bucket",
        "holiday",
        "other",
        "store_totals",
    ):
        assert key in d, key
    assert len(d["folds"]) == 2 and d["folds"][0]["origin"] > d["folds"][1]["origin"]
    assert list(result.predictions.columns[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    first = result.predictions[result.predictions["Origin"] == d["folds"][0]["origin"]]
    window = small_dataset.sales[
        (small_dataset.sales["date"] > result.origin)
        & (small_dataset.sales["date"] <= result.origin + pd.Timedelta(weeks=39))
    ]
    assert len(first) == len(window)  # every store-department row of the window
    assert set(d["by_bucket"]) == {"1-4", "5-13", "14-26", "27-39"}
    table = result.format_table()
    assert "WMAE" in table and "seasonal naive" in table and "coverage 80%" in table
    assert "store totals coverage" in table
    stores, weeks = window["store"].nunique(), window["date"].nunique()
    assert d["folds"][0]["store_totals"]["store_weeks"] == stores * weeks


def test_model_beats_naive_and_intervals_cover_on_synthetic(result):
    d = result.to_dict()
    assert d["wmae"] < d["baseline_wmae"]
    assert 0.65 <= d["coverage_80"] <= 0.95
    assert 0.85 <= d["coverage_95"] <= 0.995
    assert 0.65 <= d["store_totals"]["coverage_80"] <= 0.95
    assert 0.85 <= d["store_totals"]["coverage_95"] <= 1.0
    p = result.predictions
    assert (p["lower_95"] <= p["lower_80"]).all() and (p["upper_80"] <= p["upper_95"]).all()


def test_bad_arguments(small_dataset):
    with pytest.raises(ValueError, match="horizon"):
        run_backtest(small_dataset, "2012-01-27", 60)
    with pytest.raises(ValueError, match="no weeks"):
        run_backtest(small_dataset, "2013-01-04", 10)
    with pytest.raises(ValueError, match="history"):
        run_backtest(small_dataset, "2010-03-05", 10)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("STORECAST_SLOW"), reason="set STORECAST_SLOW=1 (minutes on 2 cores)")
@pytest.mark.parametrize(
    ("origin", "target"),
    [("2012-01-27", 0.80), ("2011-10-28", 0.85), ("2011-07-29", 0.85)],  # figures: benchmarks/RESULTS.md
)
def test_real_data_backtest_meets_the_accuracy_target(origin, target):
    """The accuracy and coverage targets at three origins. Store totals are held to a horizon bucket's
    bands: with 45 stores, a few stores' lasting errors move their coverage by a couple of points."""
    from app.forecasting.data import load_dataset

    ds = load_dataset(REAL_DATA_DIR)
    r = run_backtest(ds, origin, 39).to_dict()
    assert 1_700 < r["baseline_wmae"] < 2_100  # the seasonal naive's scale on these weeks
    assert r["wmae"] <= target * r["baseline_wmae"]
    assert 0.77 <= r["coverage_80"] <= 0.83 and 0.93 <= r["coverage_95"] <= 0.97
    totals = r["store_totals"]
    assert 0.75 <= totals["coverage_80"] <= 0.85 and 0.90 <= totals["coverage_95"] <= 0.98
    assert r["rows"] > 110_000 and np.isfinite(r["mae"])


@pytest.mark.real_data
def test_real_data_intervals_cover_at_an_early_origin():
    """Coverage at 2011-07-29, where the calibrating model never saw a target a year on (6 stores)."""
    from dataclasses import replace

    from app.forecasting.data import load_dataset

    ds = load_dataset(REAL_DATA_DIR)
    keep = [1, 5, 10, 20, 33, 40]  # sizes A, B and C
    ds = replace(
        ds,
        sales=ds.sales[ds.sales["store"].isin(keep)].reset_index(drop=True),
        features=ds.features[ds.features["store"].isin(keep)].reset_index(drop=True),
        stores=ds.stores[ds.stores["store"].isin(keep)].reset_index(drop=True),
    )
    r = run_backtest(ds, "2011-07-29", 39, params={**TINY, "max_rows": 40_000}).to_dict()
    assert 0.74 <= r["coverage_80"] <= 0.86, r["coverage_80"]
    assert 0.91 <= r["coverage_95"] <= 0.98, r["coverage_95"]
