"""The Forecaster: rows, weeks, stores, covariates, cold starts, errors, leakage."""

import datetime as dt
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from app.forecasting.artifacts import load_forecaster
from app.forecasting.data import Dataset
from app.forecasting.forecaster import ForecastError
from app.forecasting.prediction import Prediction, to_predictions
from app.forecasting.training import train
from tests.helpers.known import cold_pair
from tests.helpers.training import TINY_TRAIN_PARAMS


@pytest.fixture(scope="module")
def fc(small_artifact):
    return load_forecaster(small_artifact.path, small_artifact.sha256)


def _row(fc, **kw):
    store = fc.stores()[0]
    return {"store": store, "dept": fc.departments(store)[0], "date": fc.origin + pd.Timedelta(weeks=1), **kw}


def test_predict_rows_returns_json_safe_predictions(fc):
    preds = fc.predict_rows([_row(fc), _row(fc, date=(fc.origin + pd.Timedelta(weeks=5)).date().isoformat())])
    assert [p.horizon for p in preds] == [1, 5]
    p = preds[0]
    assert isinstance(p, Prediction) and p.lower_95 <= p.lower_80 <= p.prediction <= p.upper_80 <= p.upper_95
    d = json.loads(json.dumps(p.to_dict()))
    assert d["week"] == (fc.origin + pd.Timedelta(weeks=1)).date().isoformat()
    assert d["model_version"] == fc.version and d["cold_start"] is False
    assert set(d["inputs"]) >= {"temperature", "fuel_price", "cpi", "unemployment", "markdown1", "is_holiday"}
    assert d["assumed"]["temperature"] in {
        "features table",
        "same week last year",
        "last known value",
        "missing",
    }


def test_any_weekday_maps_to_its_friday(fc):
    friday = fc.origin + pd.Timedelta(weeks=3)
    a = fc.predict_rows([_row(fc, date=friday)])[0]
    b = fc.predict_rows([_row(fc, date=(friday - pd.Timedelta(days=4)).date())])[0]
    assert a.week == b.week and a.prediction == b.prediction


@pytest.mark.parametrize("weeks", [0, 53, -3])
def test_dates_outside_the_52_weeks_are_refused(fc, weeks):
    with pytest.raises(ForecastError) as err:
        fc.predict_rows([_row(fc, date=fc.origin + pd.Timedelta(weeks=weeks))])
    assert err.value.field == "date"
    lo, hi = fc.valid_range()
    assert str(lo.date()) in err.value.message and str(hi.date()) in err.value.message


def test_bad_dates_and_unknown_store(fc):
    with pytest.raises(ForecastError) as err:
        fc.predict_rows([_row(fc, date="not a date")])
    assert err.value.field == "date"
    with pytest.raises(ForecastError) as err:
        fc.predict_rows([_row(fc, store=999)])
    assert err.value.field == "store"
    with pytest.raises(ForecastError):
        fc.forecast(999, 1, fc.origin + pd.Timedelta(weeks=1), 4)


def test_cold_start_for_a_department_without_history(fc):
    store, missing = cold_pair(fc)
    p = fc.predict_rows([_row(fc, store=store, dept=missing)])[0]
    assert p.cold_start is True
    assert np.isfinite(p.prediction) and p.lower_95 < p.upper_95


def test_a_department_no_store_sells_is_refused_not_estimated(fc):
    """A cold start borrows the department's share of a store and its season from the stores selling
    it: with none, an estimate would be the chain's typical department, presented as this one."""
    unsold = next(d for d in range(1, 1000) if d not in fc.all_departments())
    for call in (
        lambda: fc.predict_rows([_row(fc, dept=unsold)]),
        lambda: fc.forecast(fc.stores()[0], unsold, fc.origin + pd.Timedelta(weeks=1), 3),
    ):
        with pytest.raises(ForecastError) as caught:
            call()
        assert caught.value.field == "dept" and f"unknown department {unsold}" in str(caught.value)


def test_caller_covariates_are_used_and_not_assumed(fc):
    base = fc.predict_rows([_row(fc)])[0]
    given = fc.predict_rows([_row(fc, temperature=-20.0, fuel_price=9.9)])[0]
    assert given.inputs["temperature"] == -20.0 and "temperature" not in given.assumed
    assert "temperature" in base.assumed and "cpi" in given.assumed


def test_flipping_is_holiday_at_horizon_20_changes_that_week(fc):
    store = fc.stores()[0]
    start = fc.origin + pd.Timedelta(weeks=1)
    plain = fc.forecast(store, fc.departments(store)[0], start, 30)
    changed = [{} for _ in range(30)]
    changed[19] = {"is_holiday": not plain[19].inputs["is_holiday"]}
    flipped = fc.forecast(store, fc.departments(store)[0], start, 30, covariates=changed)
    assert flipped[19].horizon == 20
    changed_weeks = sum(a.prediction != b.prediction for a, b in zip(plain, flipped, strict=True))
    assert changed_weeks <= 1
    # all departments: at least one reacts to the flag (a small model may ignore it for some)
    moved = 0
    for dept in fc.departments(store):
        a = fc.forecast(store, dept, start, 30)[19].prediction
        b = fc.forecast(store, dept, start, 30, covariates=changed)[19].prediction
        moved += a != b
    assert moved >= 1
    assert flipped[19].assumed.get("is_holiday") is None and flipped[18].assumed["is_holiday"]


def test_forecast_52_weeks_and_whole_store(fc):
    store = fc.stores()[0]
    start = fc.origin + pd.Timedelta(weeks=1)
    preds = fc.forecast(store, fc.departments(store)[0], start, 52)
    assert [p.horizon for p in preds] == list(range(1, 53))
    with pytest.raises(ForecastError):
        fc.forecast(store, fc.departments(store)[0], start, 53)
    sf = fc.forecast_store(store, start, 39)
    assert sorted(sf.departments) == fc.departments(store)
    assert len(sf.total) == 39
    week0 = sum(v[0].prediction for v in sf.departments.values())
    assert sf.total[0].prediction == pytest.approx(week0)
    json.dumps(sf.to_dict())


def test_history_stores_and_departments(fc):
    store = fc.stores()[0]
    hist = fc.history(store, fc.departments(store)[0], weeks=30)
    assert list(hist.columns) == ["date", "weekly_sales"]
    assert 0 < len(hist) <= 30 and hist["date"].max() <= fc.origin
    with pytest.raises(ForecastError):
        fc.departments(999)


def test_sales_after_the_origin_change_no_forecast(small_dataset):
    origin = small_dataset.last_week - pd.Timedelta(weeks=30)
    sales = small_dataset.sales.copy()
    after = sales["date"] > origin
    sales.loc[after, "weekly_sales"] = sales.loc[after, "weekly_sales"] * 5 + 1000
    changed = Dataset(sales, small_dataset.features, small_dataset.stores, "changed", {})
    a = train(small_dataset, through=origin, params=TINY_TRAIN_PARAMS).forecaster
    b = train(changed, through=origin, params=TINY_TRAIN_PARAMS).forecaster
    rows = [
        {"store": s, "dept": d, "date": origin + pd.Timedelta(weeks=h)}
        for s in a.stores()
        for d in a.departments(s)[:3]
        for h in (1, 13, 30, 52)
    ]
    pa, pb = a.predict_rows(rows), b.predict_rows(rows)
    assert [(p.prediction, p.lower_80, p.upper_95) for p in pa] == [
        (p.prediction, p.lower_80, p.upper_95) for p in pb
    ]


def test_any_quantile_on_request(fc):
    store = fc.stores()[0]
    dept = fc.departments(store)[0]
    start = fc.origin + pd.Timedelta(weeks=1)
    levels = [0.99, 0.01, 0.1, 0.5, 0.9, 0.25, 0.75]
    preds = fc.forecast(store, dept, start, 39, quantiles=levels)
    for p in preds:
        assert list(p.quantiles) == ["q0.01", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.99"]
        values = list(p.quantiles.values())
        assert values == sorted(values)  # monotone in q
        assert p.quantiles["q0.1"] == pytest.approx(p.lower_80)
        assert p.quantiles["q0.9"] == pytest.approx(p.upper_80)
        assert p.quantiles["q0.5"] == pytest.approx(p.prediction)
        assert p.lower_95 >= 0 and p.quantiles["q0.01"] >= 0  # the series never sold below 0
    assert json.loads(json.dumps(preds[0].to_dict()))["quantiles"]["q0.9"] == preds[0].upper_80
    assert "quantiles" not in fc.forecast(store, dept, start, 1)[0].to_dict()  # only when asked
    rows = fc.predict_rows([_row(fc)], quantiles=[0.05])
    assert rows[0].quantiles["q0.05"] <= rows[0].lower_80
    frame = pd.DataFrame([_row(fc)])
    assert fc.predict_frame(frame, quantiles=[0.9])["q0.9"].iloc[0] == pytest.approx(rows[0].upper_80)
    run = fc.forecast_all(weeks=2, quantiles=[0.5])
    assert np.allclose(run["q0.5"], run["prediction"])
    for bad in (0.0, 1.5, "x", None):
        with pytest.raises(ForecastError, match="quantiles"):
            fc.forecast(store, dept, start, 2, quantiles=[bad])


def test_store_totals_read_the_bucket_only_half_widths(small_artifact):
    """A store total's interval comes from its departments' bucket-only half-widths: doubling how much
    the series' difficulty spreads their own bands leaves it as it was."""
    fc, spread = (load_forecaster(small_artifact.path, small_artifact.sha256) for _ in range(2))
    assert fc.calibrator.difficulty_coef and fc.calibrator.plain_quantiles
    spread.calibrator.difficulty_coef = [[2 * c for c in coef] for coef in fc.calibrator.difficulty_coef]
    spread.calibrator.difficulty_center = [2 * c for c in fc.calibrator.difficulty_center]
    store = fc.stores()[0]
    start = fc.origin + pd.Timedelta(weeks=1)
    before, after = fc.forecast_store(store, start, 39), spread.forecast_store(store, start, 39)
    dept = fc.departments(store)[0]
    assert [p.upper_80 for p in after.departments[dept]] != [p.upper_80 for p in before.departments[dept]]
    for b, a in zip(before.total, after.total, strict=True):
        assert a.upper_80 == pytest.approx(b.upper_80) and a.lower_95 == pytest.approx(b.lower_95)


def _vectorised(fc, store, dept, weeks):
    """The vectorised path's predictions, bypassing the series blocks."""
    n = len(weeks)
    arrays = fc._predict_arrays(np.full(n, store), np.full(n, dept), np.asarray(weeks), None)
    return to_predictions(arrays, fc.version, fc.data_through)


def _same(fast, slow):
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        for name in ("prediction", "lower_80", "upper_80", "lower_95", "upper_95"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), abs=1e-9, rel=0)
        assert (a.store, a.dept, a.week, a.horizon, a.cold_start) == (
            b.store,
            b.dept,
            b.week,
            b.horizon,
            b.cold_start,
        )
        assert a.inputs == b.inputs and a.assumed == b.assumed


def test_one_series_from_its_block_equals_the_vectorised_path(fc):
    """A single row, a forecast and a store's departments read from the series' block give the numbers
    the vectorised path computes, on random store-departments (cold starts among them) and weeks."""
    rng = np.random.default_rng(3)
    stores = fc.stores()
    for _ in range(60):
        store = int(rng.choice(stores))
        depts = fc.departments(store)
        cold = [d for d in fc.all_departments() if d not in depts]  # sold elsewhere: a cold start here
        dept = int(rng.choice(cold)) if cold and rng.random() >= 0.85 else int(rng.choice(depts))
        horizon = int(rng.integers(1, 53))
        week = fc.origin_week + horizon
        date = (fc.origin + pd.Timedelta(weeks=horizon)).date().isoformat()
        _same(
            fc.predict_rows([{"store": store, "dept": dept, "date": date}]),
            _vectorised(fc, store, dept, [week]),
        )
        span = int(rng.integers(1, 53 - horizon + 1))
        _same(fc.forecast(store, dept, date, span), _vectorised(fc, store, dept, range(week, week + span)))
    store = stores[0]
    start = fc.origin + pd.Timedelta(weeks=3)
    whole = fc.forecast_store(store, start, 20)
    for dept, preds in whole.departments.items():
        _same(preds, _vectorised(fc, store, dept, range(fc.origin_week + 3, fc.origin_week + 23)))


def test_the_series_blocks_are_not_saved_with_the_model(fc):
    fc.predict_rows([_row(fc)])
    assert "_blocks" in fc.__dict__ and "_blocks" not in fc.__getstate__()
    assert "_rows" in fc.__dict__ and "_rows" not in fc.__getstate__()
    again = pickle.loads(pickle.dumps(fc))
    _same(again.predict_rows([_row(fc)]), fc.predict_rows([_row(fc)]))


def test_a_lone_row_read_in_plain_python_equals_the_vectorised_path(fc):
    """Every day of the 52 weeks (and the days just outside them), as a date and as an ISO string: a
    lone row gives the prediction that row gets beside another, or the same refusal."""
    store = fc.stores()[0]
    dept = fc.departments(store)[0]
    first = (fc.origin + pd.Timedelta(days=1)).date()
    for offset in range(-3, 7 * 52 + 4):
        day = first + dt.timedelta(days=offset)
        for date in (day, day.isoformat()):
            row = {"store": store, "dept": dept, "date": date}
            try:
                pair = fc.predict_rows([row, row])
            except ForecastError as error:
                with pytest.raises(ForecastError) as refused:
                    fc.predict_rows([row])
                assert (refused.value.field, refused.value.message) == (error.field, error.message)
                continue
            (alone,) = fc.predict_rows([row])
            assert alone == pair[0]


def test_a_lone_row_owns_its_dicts(fc):
    first = fc.predict_rows([_row(fc)])[0]
    first.inputs["temperature"] = -1.0
    first.assumed.clear()
    first.components = {"base": 1.0}
    again = fc.predict_rows([_row(fc)])[0]
    assert again.inputs["temperature"] != -1.0 and again.assumed and again.components is None


@pytest.mark.parametrize(
    "date", ["2012-W44-5", "2012-11-2 ", "not-a-date", None, dt.datetime(2012, 11, 2, 12, 0)]
)
def test_a_lone_row_outside_the_plain_case_is_answered_as_before(fc, date):
    row = {"store": fc.stores()[0], "dept": fc.departments(fc.stores()[0])[0], "date": date}
    assert fc._one_row(row) is None
