"""Each store's arriving covariates against its own history: offset, stuck and missing feeds are warnings
the week they arrive, naming the stores and the covariate, and close when the values are back."""

from __future__ import annotations

import pandas as pd
import pytest

from app.forecasting.artifacts import load_forecaster
from app.loop import faults
from app.monitoring import alerts, covariate_check


@pytest.fixture(scope="module")
def grid(small_artifact):
    forecaster = load_forecaster(small_artifact.path)
    return forecaster.covariates, forecaster.data_through


@pytest.fixture(scope="module")
def held_back_start(small_dataset):
    return small_dataset.last_week - pd.Timedelta(weeks=12)


def _arriving(dataset, week: pd.Timestamp, *specs: str) -> pd.DataFrame:
    faulted = faults.apply_faults(dataset, faults.parse_faults(specs))
    return faulted.features[faulted.features["date"] == week]


@pytest.fixture
def week(small_dataset, held_back_start):
    return held_back_start + pd.Timedelta(weeks=1)


def test_clean_covariates_raise_nothing(small_dataset, grid, held_back_start):
    covariates, trained = grid
    for k in range(1, 13):
        week = held_back_start + pd.Timedelta(weeks=k)
        assert (
            covariate_check.covariate_findings(
                covariates, _arriving(small_dataset, week), week.date(), trained
            )
            == {}
        )


@pytest.mark.parametrize(
    ("spec", "column", "mode"),
    [
        ("covariate:stores=3,column=temperature,mode=offset,size=-40", "temperature", "off"),
        ("covariate:stores=2,column=fuel_price,mode=offset,size=1.5", "fuel_price", "off"),
        ("covariate:stores=2+4,column=temperature,mode=stuck", "temperature", "stuck"),
        ("covariate:stores=3,column=unemployment,mode=missing", "unemployment", "missing"),
    ],
)
def test_a_broken_feed_is_a_warning_the_week_it_arrives_naming_stores_and_covariate(
    app, small_dataset, grid, week, spec, column, mode
):
    covariates, trained = grid
    stores = [int(s) for s in spec.split("stores=")[1].split(",")[0].split("+")]
    arriving = _arriving(small_dataset, week, f"{spec},start={week.date()}")
    storage = app.extensions["storage"]
    with storage.session() as session:
        covariate_check.check_covariates(session, covariates, arriving, week.date(), trained)
        (alert,) = alerts.open_alerts(session)
        assert (alert.kind, alert.severity) == ("covariates", "warning")
        assert alert.details["column"] == column and alert.details["stores"] == stores
        assert [i["mode"] for i in alert.details["issues"]] == [mode] * len(stores)
        assert alert.message.startswith(f"{column} of store") and "A broken feed?" in alert.message
        assert alert.details["url"] == f"/store?store={stores[0]}"
        covariate_check.check_covariates(
            session, covariates, _arriving(small_dataset, week), week.date(), trained
        )
        assert alerts.open_alerts(session) == []


def test_an_offset_names_the_value_and_what_was_expected(app, small_dataset, grid, week):
    covariates, trained = grid
    spec = f"covariate:stores=1,column=temperature,mode=offset,size=-40,start={week.date()}"
    found = covariate_check.covariate_findings(
        covariates, _arriving(small_dataset, week, spec), week.date(), trained
    )
    (issue,) = found["temperature"]
    clean = _arriving(small_dataset, week)
    value = float(clean.loc[clean["store"] == 1, "temperature"].iloc[0])
    assert issue["value"] == pytest.approx(value - 40) and abs(issue["expected"] - value) < issue["limit"]
