"""The proper scores' arithmetic, against examples worked by hand, and the groups they are given by."""

import numpy as np
import pytest

from app.forecasting.scores import (
    band_ranges,
    band_scores,
    grouped_scores,
    interval_score,
    series_profile,
    weighted_quantile_loss,
)


def test_interval_score_charges_width_and_misses():
    y = np.array([10.0, 0.0, 25.0])
    lower, upper = np.full(3, 5.0), np.full(3, 15.0)
    # inside: width 10; 5 below: 10 + (2 / 0.2) * 5 = 60; 10 above: 10 + 10 * 10 = 110
    assert interval_score(y, lower, upper, 0.2) == pytest.approx((10 + 60 + 110) / 3)
    # at 95%: misses cost 2 / 0.05 = 40 per dollar
    assert interval_score(y, lower, upper, 0.05) == pytest.approx((10 + 210 + 410) / 3)
    assert np.isnan(interval_score(np.array([]), np.array([]), np.array([]), 0.2))


def test_weighted_quantile_loss():
    y, q = np.array([10.0, 20.0]), np.array([12.0, 15.0])
    # 0.9: over by 2 costs 0.1 * 2, under by 5 costs 0.9 * 5; 2 * 4.7 / 30
    assert weighted_quantile_loss(y, q, 0.9) == pytest.approx(2 * 4.7 / 30)
    # 0.5: half the absolute errors, doubled: sum |e| / sum |y|
    assert weighted_quantile_loss(y, q, 0.5) == pytest.approx(7 / 30)
    # 0.1: over by 2 costs 0.9 * 2, under by 5 costs 0.1 * 5
    assert weighted_quantile_loss(y, q, 0.1) == pytest.approx(2 * 2.3 / 30)
    assert np.isnan(weighted_quantile_loss(np.zeros(2), q, 0.5))


def test_band_scores_read_the_80_band_as_the_outer_deciles():
    y = np.array([10.0, 20.0])
    out = band_scores(y, np.array([11.0, 18.0]), np.array([8.0, 21.0]), np.array([12.0, 25.0]),
                      np.array([5.0, 19.0]), np.array([15.0, 30.0]))  # fmt: skip
    assert out["coverage_80"] == 0.5 and out["coverage_95"] == 1.0
    assert out["wql_0.1"] == pytest.approx(weighted_quantile_loss(y, np.array([8.0, 21.0]), 0.1))
    assert out["wql_0.9"] == pytest.approx(weighted_quantile_loss(y, np.array([12.0, 25.0]), 0.9))
    assert out["wql_0.5"] == pytest.approx(3 / 30)
    assert out["interval_score_80"] == pytest.approx((4 + 4 + 10 * 1) / 2)


def test_series_profile_and_quarters():
    history = np.array([[10.0, 10.0, 10.0], [5.0, 15.0, np.nan], [np.nan, np.nan, 4.0]])
    cv, size = series_profile(history)
    assert cv[0] == 0 and size[0] == 10
    assert cv[1] == pytest.approx(np.std([5, 15], ddof=1) / 10) and size[1] == 10
    assert np.isnan(cv[2]) and np.isnan(size[2])  # one week says nothing of its spread
    # eight series, two rows each: quarters by the series' volatility, and by size the other way round
    vol = np.repeat(np.arange(8.0), 2)
    size = -vol
    y = np.full(16, 10.0)
    bands = {"prediction": y, "lower_80": y - 1, "upper_80": y + 1, "lower_95": y - 2, "upper_95": y + 2}
    out = grouped_scores(y, bands, np.tile([1, 30], 8), vol, size)
    assert {q: v["rows"] for q, v in out["by_volatility_quarter"].items()} == {
        f"Q{k}": 4 for k in range(1, 5)
    }
    assert set(out["by_horizon"]) == {"1", "27-52"}
    assert out["by_size_quarter"]["Q1"]["rows"] == 4 and out["interval_score_80"] == 2
    assert band_ranges(out, "coverage_80") == (1.0, 1.0)
