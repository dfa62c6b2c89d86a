"""The honest backtest: figures, predictions, folds, coverage; the real data when present."""

import logging
import os

import numpy as np
import pandas as pd
import pytest

from app.forecasting.backtest import PREDICTION_COLUMNS, run_backtest
from tests.helpers.data import REAL_DATA_DIR
from tests.helpers.training import TINY_TRAIN_PARAMS

log = logging.getLogger(__name__)
TINY = {**TINY_TRAIN_PARAMS, "max_iter": 30}
# The proper scores that must beat the bucket-only conformal bands' (one set of quantiles for every
# series) on the same forecasts.
SCORE_KEYS = ("interval_score_80", "interval_score_95", "wql_0.1", "wql_0.9")


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
    assert "store totals coverage" in table and "one set of quantiles for all series" in table
    assert {"interval_score_80", "wql_0.9"} <= set(d["scores_bucket_only"])
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


QUARTER_FLOORS = (0.74, 0.90, 0.70, 0.88)  # lowest coverage of a quarter at 80%, 95%; of a quarter's bucket
FIRST_YEAR_FLOORS = (0.69, 0.84, 0.63, 0.80)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("STORECAST_SLOW"), reason="set STORECAST_SLOW=1 (minutes on 2 cores)")
@pytest.mark.parametrize(
    ("origin", "target", "floors"),
    [  # benchmarks/RESULTS.md
        ("2012-01-27", 0.80, QUARTER_FLOORS),
        ("2011-10-28", 0.85, QUARTER_FLOORS),
        ("2011-07-29", 0.85, FIRST_YEAR_FLOORS),
    ],
)
def test_real_data_backtest_meets_the_accuracy_target(origin, target, floors):
    """The accuracy and coverage targets at three origins: every quarter of series by volatility and by
    size covered within the bands in every horizon bucket, with proper scores better than one set of
    quantiles for all series gives on the same forecasts. Store totals are held to a horizon bucket's
    bands: with 45 stores, a few stores' lasting errors move their coverage by a couple of points.

    At 2011-07-29 the calibrating model has never forecast a target a year on, so the far buckets are
    extrapolated from a younger model's errors: there the volatile and the small quarters run further
    under 80% and 95%, and the test holds them to lower floors than the product's 75% and 90%."""
    from app.forecasting.data import load_dataset

    ds = load_dataset(REAL_DATA_DIR)
    r = run_backtest(ds, origin, 39).to_dict()
    assert 1_700 < r["baseline_wmae"] < 2_100  # the seasonal naive's scale on these weeks
    assert r["wmae"] <= target * r["baseline_wmae"]
    assert 0.75 <= r["coverage_80"] <= 0.85 and 0.90 <= r["coverage_95"] <= 0.98
    scores, bucket_only = r["folds"][0]["scores"], r["folds"][0]["scores_bucket_only"]
    log.info("real-data backtest at %s: %s", origin, _summary(r, scores, bucket_only))
    quarter_80, quarter_95, cell_80, cell_95 = floors
    for group in ("by_volatility_quarter", "by_size_quarter"):
        for quarter, figures in scores[group].items():
            # the volatile and the small quarters run a few points under 80% where the window holds
            # Thanksgiving and Christmas (2011-10-28); far from the 41-98% of one set of quantiles
            assert quarter_80 <= figures["coverage_80"] <= 0.85, (group, quarter, figures["coverage_80"])
            assert quarter_95 <= figures["coverage_95"] <= 0.98, (group, quarter, figures["coverage_95"])
            # a quarter's horizon bucket: a few hundred (next week) to a few thousand rows of a few weeks
            for bucket, cell in figures["by_horizon"].items():
                where = (group, quarter, bucket)
                assert cell_80 <= cell["coverage_80"] <= 0.88, (where, cell["coverage_80"])
                assert cell_95 <= cell["coverage_95"] <= 0.985, (where, cell["coverage_95"])
    for key in SCORE_KEYS:
        assert scores[key] < bucket_only[key], (key, scores[key], bucket_only[key])
    totals = r["store_totals"]
    assert 0.75 <= totals["coverage_80"] <= 0.85 and 0.90 <= totals["coverage_95"] <= 0.98
    levels = r["folds"][0]["levels"]
    department = levels["department"]  # ~80 departments x 39 weeks, which share each week's errors
    assert 0.74 <= department["coverage_80"] <= 0.86 and 0.90 <= department["coverage_95"] <= 0.98
    # The chain: 39 totals, one a week. Even exact 80% and 95% bands cover 67-92% and 87-100% of them
    # (binomial 95% range; weeks that err together widen it), so the chain is held to about that.
    chain = levels["chain"]
    assert chain["totals"] == 39 and 0.66 <= chain["coverage_80"] <= 0.93, chain
    assert chain["coverage_95"] >= 0.85 and chain["coverage_80"] < 1.0, chain
    assert r["rows"] > 110_000 and np.isfinite(r["mae"])


def _summary(r: dict, scores: dict, bucket_only: dict) -> dict:
    """The figures a reader of the log compares: coverage overall, its range over the quarters, per
    horizon bucket, the store totals, the totals by level (WMAE over the seasonal naive's totals, 80% and
    95% coverage), and the proper scores beside the bucket-only bands'."""
    quarters = [f for g in ("by_volatility_quarter", "by_size_quarter") for f in scores[g].values()]
    cells = [c for f in quarters for c in f["by_horizon"].values()]

    def span(items: list, key: str) -> str:
        return f"{min(i[key] for i in items):.3f}-{max(i[key] for i in items):.3f}"

    keys = (*SCORE_KEYS, "wql_0.5")
    return {
        "wmae_ratio": round(r["wmae"] / r["baseline_wmae"], 3),
        "coverage": (round(r["coverage_80"], 3), round(r["coverage_95"], 3)),
        "quarters": (span(quarters, "coverage_80"), span(quarters, "coverage_95")),
        "quarter_buckets": (span(cells, "coverage_80"), span(cells, "coverage_95")),
        "by_horizon": {
            b: (round(c["coverage_80"], 3), round(c["coverage_95"], 3))
            for b, c in scores["by_horizon"].items()
        },
        "by_volatility": {q: round(f["coverage_80"], 3) for q, f in scores["by_volatility_quarter"].items()},
        "by_size": {q: round(f["coverage_80"], 3) for q, f in scores["by_size_quarter"].items()},
        "store_totals": (r["store_totals"]["coverage_80"], r["store_totals"]["coverage_95"]),
        "levels": {
            level: (round(f["ratio_to_baseline"], 3), round(f["coverage_80"], 3), round(f["coverage_95"], 3))
            for level, f in r["levels"].items()
        },
        "scores": {k: round(scores[k], 4) for k in keys},
        "bucket_only": {k: round(bucket_only[k], 4) for k in keys},
    }


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


def test_calm_and_volatile_series_are_each_covered():
    """Series whose noise is known, from calm to volatile, side by side: every quarter of series by
    volatility and by size is covered within the bands, not only all of them together."""
    from app.forecasting.synthetic import generate_dataset

    ds = generate_dataset(seed=2, n_stores=6, n_depts=16, noise=(0.02, 0.6))
    origin = ds.last_week - pd.Timedelta(weeks=39)
    fold = run_backtest(ds, origin, 39, params={"max_rows": 60_000, "max_iter": 60}).folds[0]
    scores, bucket_only = fold["scores"], fold["scores_bucket_only"]
    for group in ("by_volatility_quarter", "by_size_quarter"):
        assert len(scores[group]) == 4
        for quarter, figures in scores[group].items():
            assert 0.75 <= figures["coverage_80"] <= 0.85, (group, quarter, figures["coverage_80"])
            assert 0.90 <= figures["coverage_95"] <= 0.98, (group, quarter, figures["coverage_95"])
            assert figures["interval_score_80"] < figures["interval_score_95"]
            # a quarter's horizon bucket of a few hundred rows: within the bands but for a binomial
            # count's scatter (about 2.5 points at 80% on 250 rows)
            for bucket, cell in figures["by_horizon"].items():
                if cell["rows"] >= 250:
                    where = (group, quarter, bucket)
                    assert 0.70 <= cell["coverage_80"] <= 0.90, (where, cell["coverage_80"])
                    assert 0.88 <= cell["coverage_95"] <= 0.99, (where, cell["coverage_95"])
    for key in SCORE_KEYS:  # better than one set of quantiles for every series on the same forecasts
        assert scores[key] < bucket_only[key], (key, scores[key], bucket_only[key])
    # the calm quarter narrower and the volatile one scored better, not only all series together
    for quarter in ("Q1", "Q4"):
        mine, plain = (s["by_volatility_quarter"][quarter] for s in (scores, bucket_only))
        assert mine["interval_score_80"] < plain["interval_score_80"], quarter
        assert mine["interval_score_95"] < plain["interval_score_95"], quarter


def test_a_chain_with_one_year_of_history():
    """52 weeks of sales: the model trains, its intervals are calibrated on weeks its inner model did not
    see, and it beats the seasonal naive; under 52 weeks, a message in words."""
    from app.forecasting.synthetic import generate_dataset

    ds = generate_dataset(seed=5, n_stores=6, n_depts=12)
    first = ds.sales["date"].min()
    origin = first + pd.Timedelta(weeks=51)
    result = run_backtest(ds, origin, 13, params=TINY)
    fold, meta = result.folds[0], result.models[0].metadata
    assert fold["wmae"] < fold["baseline_wmae"]
    assert fold["coverage_80"] >= 0.75 and fold["coverage_95"] >= 0.9
    held_out = meta["backtest"]
    assert held_out and held_out["horizon"] < 39 and held_out["rows"] > 0
    assert held_out["origin"] < origin.date().isoformat()  # calibrated on weeks after the inner cutoff
    assert sum(meta["intervals"]["counts"].values()) > 0
    with pytest.raises(ValueError, match="51 weeks of history.*at least 52 weeks"):
        run_backtest(ds, origin - pd.Timedelta(weeks=1), 13, params=TINY)
