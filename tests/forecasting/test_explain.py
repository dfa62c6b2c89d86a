"""Why this number: components that add up to every prediction, and last year's sales beside it."""

import numpy as np
import pandas as pd
import pytest

from app.forecasting import calendar
from app.forecasting.artifacts import load_forecaster
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.explain import COMPONENTS, rounded
from tests.helpers.known import cold_pair


@pytest.fixture(scope="module")
def fc(small_artifact):
    return load_forecaster(small_artifact.path, small_artifact.sha256)


def _every_series_rows(fc, weeks=(1, 7, 20, 45, 52)):
    rows = []
    for store in fc.stores():
        for dept in fc.departments(store):
            rows.extend(
                {"store": store, "dept": dept, "date": (fc.origin + pd.Timedelta(weeks=h)).date()}
                for h in weeks
            )
    store, missing = cold_pair(fc)
    rows.append({"store": store, "dept": missing, "date": fc.origin + pd.Timedelta(weeks=3)})
    return rows


def test_components_sum_to_every_prediction(fc):
    preds = fc.predict_rows(_every_series_rows(fc), explain=True)
    assert any(p.cold_start for p in preds)
    for p in preds:
        assert list(p.components) == list(COMPONENTS)
        assert sum(p.components.values()) == pytest.approx(
            p.prediction, abs=1e-6 * max(1.0, abs(p.prediction))
        )
        cents = rounded(p.components, p.prediction)
        assert round(sum(cents.values()) * 100) == round(p.prediction * 100)
        assert all(round(v, 2) == v for v in cents.values())
    cold = next(p for p in preds if p.cold_start)
    assert cold.components["model"] == cold.prediction and cold.last_year_sales is None
    warm = [p for p in preds if not p.cold_start]
    assert np.mean([abs(p.components["last_year"]) > 0 for p in warm]) > 0.9


def test_explaining_changes_no_number(fc):
    store = fc.stores()[1]
    dept = fc.departments(store)[2]
    start = fc.origin + pd.Timedelta(weeks=1)
    plain = fc.forecast(store, dept, start, 52)
    explained = fc.forecast(store, dept, start, 52, explain=True)
    assert [p.prediction for p in plain] == [p.prediction for p in explained]
    assert [p.upper_80 for p in plain] == [p.upper_80 for p in explained]
    assert all(p.components is None and p.last_year_sales is None for p in plain)
    for p in explained:
        assert sum(p.components.values()) == pytest.approx(p.prediction, rel=1e-9, abs=1e-6)


def test_last_year_is_the_aligned_week_of_the_history(fc):
    store = fc.stores()[0]
    dept = fc.departments(store)[0]
    preds = fc.forecast(store, dept, fc.origin + pd.Timedelta(weeks=1), 52, explain=True)
    history = fc.history(store, dept, weeks=200).set_index("date")["weekly_sales"]
    for p in preds:
        assert p.last_year_week == calendar.aligned_lag_week(p.week).date()
        known = history.get(pd.Timestamp(p.last_year_week))
        assert p.last_year_sales == (None if known is None else pytest.approx(known))
    thanksgiving = calendar.flagged_holiday_weeks(preds[0].week.year)["thanksgiving"].date()
    week = next(p for p in preds if p.week == thanksgiving)
    assert week.last_year_week == calendar.flagged_holiday_weeks(thanksgiving.year - 1)["thanksgiving"].date()


def test_covariates_as_last_year_contribute_nothing(fc):
    """The covariates' reference is the store's values the same week last year: given exactly those,
    their component is zero; other covariates move it and leave last year's value alone."""
    store = fc.stores()[0]
    dept = fc.departments(store)[0]
    week = fc.origin + pd.Timedelta(weeks=10)
    row = {"store": store, "dept": dept, "date": week}
    pos = fc.covariates.store_pos(np.array([store]))[0]
    col = calendar.week_index(week - pd.Timedelta(weeks=52))[0] - fc.covariates.first_week
    values = fc.covariates.values[pos, col].astype(float)
    assert np.isfinite(values).all()
    same = fc.predict_rows(
        [{**row, **dict(zip(COVARIATE_COLUMNS, values.tolist(), strict=True))}], explain=True
    )[0]
    assert same.components["covariates"] == pytest.approx(0.0, abs=1e-9)
    hot = {**row, **dict(zip(COVARIATE_COLUMNS, values.tolist(), strict=True)), "temperature": 120.0}
    moved = fc.predict_rows([{**hot, "markdown1": 90_000.0}], explain=True)[0]
    assert moved.components["last_year"] == same.components["last_year"]
    assert sum(moved.components.values()) == pytest.approx(moved.prediction)


def test_rounding_puts_the_remainder_in_the_last_component():
    parts = {"last_year": 100.004, "trend": 0.004, "holiday": 0.004, "covariates": 0.004, "model": -0.001}
    total = sum(parts.values())
    out = rounded(parts, total)
    assert out["last_year"] == 100.0 and out["trend"] == 0.0
    assert round(sum(out.values()), 2) == round(total, 2) == 100.02
    assert out["model"] == 0.02
