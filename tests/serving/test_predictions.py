"""The what-if's ranges: the model's response over the covariate values seen in a store's data."""

from __future__ import annotations

import numpy as np
import pytest

from app.forecasting.artifacts import load_forecaster
from app.forecasting.covariates import COV_SOURCES
from app.forecasting.data import COVARIATE_COLUMNS
from app.serving import predictions


@pytest.fixture(scope="module")
def model(small_artifact):
    return load_forecaster(small_artifact.path)


def test_seen_values_are_the_stores_own_given_values_between_the_5th_and_95th_percentile(model):
    store = model.stores()[0]
    seen = predictions.seen_values(model, store)
    assert set(seen) <= set(COVARIATE_COLUMNS) and "temperature" in seen
    cov = model.covariates
    position = int(cov.store_pos(np.array([store]))[0])
    upto = model.origin_week - cov.first_week + 1
    column = COVARIATE_COLUMNS.index("temperature")
    given = cov.source[position, :upto, column] == COV_SOURCES.index("features")
    values = cov.values[position, :upto, column][given].astype(float)
    low, high = seen["temperature"]
    assert low == pytest.approx(np.quantile(values, 0.05), abs=0.01)
    assert high == pytest.approx(np.quantile(values, 0.95), abs=0.01)
    assert predictions.seen_values(model, max(model.stores()) + 1) == {}


def test_what_if_gives_every_seen_covariate_its_range_and_flags_a_value_never_seen(model):
    store = model.stores()[0]
    dept = model.departments(store)[0]
    start = predictions.default_start(model)
    seen = predictions.seen_values(model, store)
    base = sum(p.prediction for p in model.forecast(store, dept, start, 4))
    far = seen["temperature"][1] + 40
    served = sum(
        p.prediction for p in model.forecast(store, dept, start, 4, covariates=[{"temperature": far}] * 4)
    )
    answer = predictions.what_if(model, store, dept, start, 4, {"temperature": far}, served)

    assert answer["default_total"] == pytest.approx(base, abs=0.01)
    assert [r["name"] for r in answer["ranges"]] == list(seen)
    for r in answer["ranges"]:  # each end is the forecast with that covariate alone at that value
        assert (r["seen_low"], r["seen_high"]) == seen[r["name"]]
        at_high = model.forecast(store, dept, start, 4, covariates=[{r["name"]: r["seen_high"]}] * 4)
        assert r["at_high"] == pytest.approx(sum(p.prediction for p in at_high) - base, abs=0.02)
    (driver,) = answer["drivers"]
    assert driver["outside_seen"] is True and driver["seen"] == seen["temperature"]
    assert driver["difference"] == pytest.approx(served - base, abs=0.02)
    inside = predictions.what_if(model, store, dept, start, 4, {"temperature": seen["temperature"][0]}, base)
    assert inside["drivers"][0]["outside_seen"] is False
