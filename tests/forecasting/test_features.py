"""The one feature pipeline: no sales after the origin (or of the target week) reach a feature."""

import numpy as np
import pytest

from app.forecasting import calendar
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.features import (
    FEATURE_LABELS,
    FEATURE_NAMES,
    IDX,
    assemble,
    feature_label,
    resolve_covariates,
)
from app.forecasting.holdout import build_covariates, truncate
from app.forecasting.origin_state import origin_state
from app.forecasting.panel import Panel, sample_series
from app.forecasting.training_set import build_training_set


@pytest.fixture(scope="module")
def setup(small_dataset):
    panel = Panel.from_sales(small_dataset.sales)
    cov = build_covariates(small_dataset, panel, panel.last_week)
    return panel, cov


def _features(panel, cov, origin, config=None):
    config = config or FeatureConfig()
    state = origin_state(panel, origin, config)
    rows = np.repeat(np.arange(len(panel.store)), 52)
    week = np.tile(np.arange(origin + 1, origin + 53), len(panel.store))
    sp = cov.store_pos(panel.store[rows])
    values, _, holiday, _ = resolve_covariates(cov, sp, week)
    return assemble(state, rows, week, cov, sp, values, holiday, config)


def test_sales_after_the_origin_change_no_feature(setup):
    panel, cov = setup
    origin = panel.last_week - 40
    X1, b1, s1 = _features(panel, cov, origin)
    changed = Panel(panel.store, panel.dept, panel.first_week, panel.values.copy())
    changed.values[:, origin - panel.first_week + 1 :] *= 3.0
    X2, b2, s2 = _features(changed, cov, origin)
    assert np.array_equal(X1, X2, equal_nan=True)
    assert np.array_equal(b1, b2) and np.array_equal(s1, s2)
    # and the origin week itself does matter (the test would pass vacuously otherwise)
    changed.values[:, origin - panel.first_week] *= 3.0
    X3, _, _ = _features(changed, cov, origin)
    assert not np.array_equal(X1, X3, equal_nan=True)


def test_truncated_panel_gives_the_same_state(setup):
    panel, _ = setup
    origin = panel.last_week - 20
    a = origin_state(panel, origin, FeatureConfig())
    b = origin_state(truncate(panel, origin), origin, FeatureConfig())
    assert np.array_equal(a.svd, b.svd, equal_nan=True)
    assert all(np.array_equal(a.stats[k], b.stats[k], equal_nan=True) for k in a.stats)


def test_lags_are_nan_when_they_would_fall_after_the_origin(setup):
    panel, cov = setup
    origin = panel.last_week - 60
    X, _, _ = _features(panel, cov, origin)
    h = np.tile(np.arange(1, 53), len(panel.store))
    lag51 = X[:, FEATURE_NAMES.index("lag51")]
    assert np.isnan(lag51[h == 52]).all()  # 51 weeks before h=52 is after the origin
    assert np.isfinite(lag51[h == 1]).any()


def test_training_rows_target_only_weeks_up_to_through(setup):
    panel, cov = setup
    through = panel.last_week - 30
    ts = build_training_set(panel, cov, through, FeatureConfig(max_rows=20_000))
    assert ts.week.max() <= through
    assert (ts.week > ts.origin).all() and (ts.week - ts.origin <= 52).all()
    assert np.allclose(ts.base + ts.scale * ts.y, ts.sales)
    assert ts.X.shape[1] == len(FEATURE_NAMES)


def test_weighted_sampling_keeps_about_max_rows(setup):
    panel, cov = setup
    ts = build_training_set(panel, cov, panel.last_week, FeatureConfig(max_rows=5_000))
    assert 4_000 < len(ts.y) < 6_000
    holiday_share = ts.is_holiday.mean()
    assert holiday_share > 0.04  # holidays are ~2% of weeks; drawn x5 more often


def test_holiday_flag_is_a_feature_of_the_target_week(setup):
    panel, cov = setup
    origin = panel.last_week - 60
    X, _, _ = _features(panel, cov, origin)
    weeks = np.tile(np.arange(origin + 1, origin + 53), len(panel.store))
    flags = calendar.calendar_table(weeks)["is_holiday"]
    assert np.array_equal(X[:, FEATURE_NAMES.index("is_holiday")].astype(bool), flags)


def test_base_carries_part_of_the_recent_yearly_change(setup):
    panel, cov = setup
    origin = panel.last_week - 20
    _, flat, _ = _features(panel, cov, origin, FeatureConfig(growth_shrink=0.0))
    _, grown, _ = _features(panel, cov, origin, FeatureConfig(growth_shrink=0.5))
    yoy4 = np.repeat(origin_state(panel, origin, FeatureConfig()).stats["yoy4"], 52)
    assert np.allclose(grown - flat, 0.5 * np.nan_to_num(yoy4))
    # a series selling more over the last 4 weeks than a year before gets a higher base
    raised = Panel(panel.store, panel.dept, panel.first_week, panel.values.copy())
    raised.values[:, origin - panel.first_week - 3 : origin - panel.first_week + 1] *= 1.5
    _, higher, _ = _features(raised, cov, origin)
    assert (higher >= grown - 1e-9).all() and (higher > grown).mean() > 0.9


def test_training_targets_have_last_years_week_when_history_allows(setup):
    panel, cov = setup
    first_year = panel.first_week + 52
    ts = build_training_set(panel, cov, panel.last_week, FeatureConfig(max_rows=20_000))
    assert ts.week.min() >= first_year
    every_cfg = FeatureConfig(max_rows=20_000, year_before_only=False)
    every = build_training_set(panel, cov, panel.last_week, every_cfg)
    assert every.week.min() < first_year
    # with barely a year of history there are too few such targets: all are kept
    short = build_training_set(panel, cov, panel.first_week + 60, FeatureConfig(max_rows=20_000))
    assert short.week.min() < first_year


def test_every_feature_has_a_plain_name():
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES)
    assert feature_label("lag52") == "Sales 52 weeks earlier"
    assert all(feature_label(name) != name for name in FEATURE_NAMES)
    assert feature_label("new_thing") == "New thing"  # a name from a newer artifact still reads


def test_series_sample_keeps_every_departments_share(setup):
    panel, _ = setup
    n = len(panel.store)
    assert np.array_equal(sample_series(panel, n), np.arange(n))
    assert np.array_equal(sample_series(panel, 0), np.arange(n))
    rows = sample_series(panel, n // 2, seed=3)
    assert len(rows) == n // 2 and len(np.unique(rows)) == len(rows)
    assert np.array_equal(rows, sample_series(panel, n // 2, seed=3))  # deterministic
    per_dept = {int(d): int(np.sum(panel.dept[rows] == d)) for d in np.unique(panel.dept)}
    full = {int(d): int(np.sum(panel.dept == d)) for d in np.unique(panel.dept)}
    assert all(abs(per_dept[d] - full[d] / 2) <= 1 for d in full)


def test_base_leans_on_the_week_two_years_before_where_the_data_has_it(setup):
    panel, cov = setup
    origin = panel.last_week - 20
    one, two = FeatureConfig(two_year_weight=0.0), FeatureConfig(two_year_weight=0.3)
    _, base_one, _ = _features(panel, cov, origin, one)
    _, base_two, _ = _features(panel, cov, origin, two)
    week = np.tile(np.arange(origin + 1, origin + 53), len(panel.store))
    has_two = week - 104 >= panel.first_week + 2  # aligned twice: a holiday week may move by one each time
    assert not np.allclose(base_two[has_two], base_one[has_two])
    too_early = week - 104 < panel.first_week - 2
    assert np.allclose(base_two[too_early], base_one[too_early])
    # a series that sold 50% more in the 10 weeks two years before the first 10 targets gets higher
    # bases for those targets
    raised = Panel(panel.store, panel.dept, panel.first_week, panel.values.copy())
    start = origin + 1 - 104 - panel.first_week
    raised.values[:, start : start + 10] *= 1.5
    _, higher, _ = _features(raised, cov, origin, two)
    first_ten = has_two & (week <= origin + 10) & (week >= origin + 3)  # clear of the alignment's reach
    assert first_ten.any() and (higher[first_ten] > base_two[first_ten]).mean() > 0.9


def test_base_leans_on_last_years_neighbouring_weeks_away_from_holidays(setup):
    panel, cov = setup
    origin = panel.last_week - 20
    X, on, scale = _features(panel, cov, origin, FeatureConfig(neighbour_weight=0.3))
    _, off, _ = _features(panel, cov, origin, FeatureConfig(neighbour_weight=0.0))
    holiday = X[:, IDX["is_holiday"]] > 0
    assert holiday.any() and np.allclose(on[holiday], off[holiday])  # a holiday spike is kept whole
    to_thanksgiving, to_christmas = X[:, IDX["weeks_to_thanksgiving"]], X[:, IDX["weeks_to_christmas"]]
    near_season = (np.abs(to_thanksgiving) <= 2) | (np.abs(to_christmas) <= 2)
    assert near_season.any() and np.allclose(on[near_season], off[near_season])
    moved = ~np.isclose(on, off)
    assert moved.mean() > 0.5
    # by 0.3 of the way from last year's (denoised) week to the mean of its neighbours
    neighbours = (X[:, IDX["svd_lag_prev"]] + X[:, IDX["svd_lag_next"]]) / 2 - X[:, IDX["svd_lag_aligned"]]
    expected = 0.3 * neighbours[moved].astype(float) * scale[moved]
    assert np.allclose(on[moved] - off[moved], expected, rtol=1e-3, atol=1e-3 * scale[moved])


def test_denoising_balances_stores_of_different_sizes(setup):
    panel, _ = setup
    origin = panel.last_week - 20
    plain = origin_state(panel, origin, FeatureConfig(svd_row_power=0.0))
    balanced = origin_state(panel, origin, FeatureConfig(svd_row_power=0.5))
    assert not np.allclose(plain.svd, balanced.svd, equal_nan=True)
    # still in dollars: a department ten times larger is denoised to ten times the values
    dept = panel.dept[0]
    bigger = Panel(panel.store, panel.dept, panel.first_week, panel.values.copy())
    bigger.values[panel.dept == dept] *= 10.0
    scaled = origin_state(bigger, origin, FeatureConfig(svd_row_power=0.5))
    rows = panel.dept == dept
    assert np.allclose(scaled.svd[rows], 10.0 * balanced.svd[rows], equal_nan=True, rtol=1e-6)
    assert np.allclose(scaled.svd[~rows], balanced.svd[~rows], equal_nan=True)
