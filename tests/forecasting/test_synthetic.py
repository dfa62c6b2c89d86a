"""The synthetic Walmart-like dataset: deterministic, same schema as the loader, realistic structure."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from app.forecasting.calendar import flagged_holiday_weeks
from app.forecasting.data import FEATURE_COLUMNS, SALES_COLUMNS, STORE_COLUMNS, Dataset, summarise
from app.forecasting.synthetic import MARKDOWN_START, generate_dataset

KAGGLE_HOLIDAYS = {
    2010: ["2010-02-12", "2010-09-10", "2010-11-26", "2010-12-31"],
    2011: ["2011-02-11", "2011-09-09", "2011-11-25", "2011-12-30"],
    2012: ["2012-02-10", "2012-09-07", "2012-11-23", "2012-12-28"],
    2013: ["2013-02-08", "2013-09-06", "2013-11-29", "2013-12-27"],
}


@pytest.fixture(scope="module")
def full() -> Dataset:
    return generate_dataset(seed=0)


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate_dataset(seed=11, n_stores=4, n_depts=6)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = generate_dataset(seed=3, n_stores=4, n_depts=6)
    again = generate_dataset(seed=3, n_stores=4, n_depts=6)
    other = generate_dataset(seed=4, n_stores=4, n_depts=6)
    for name in ("sales", "features", "stores"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert first.fingerprint() == again.fingerprint()
    assert first.report == again.report
    assert first.fingerprint() != other.fingerprint()


def test_small_dataset_is_fast() -> None:
    started = time.perf_counter()
    generate_dataset(seed=1, n_stores=4, n_depts=6)
    assert time.perf_counter() - started < 2.0


def test_full_dataset_size_and_speed() -> None:
    started = time.perf_counter()
    dataset = generate_dataset(seed=2)
    assert time.perf_counter() - started < 10.0
    assert 350_000 < len(dataset.sales) < 520_000
    assert len(dataset.stores) == 45
    assert dataset.sales["dept"].nunique() == 80
    assert len(dataset.features) == 45 * 182  # 2010-02-05 .. 2013-07-26


@pytest.mark.parametrize("which", ["small", "full"])
def test_schema_and_dtypes_match_the_loader(which: str, request: pytest.FixtureRequest) -> None:
    dataset: Dataset = request.getfixturevalue(which)
    assert list(dataset.sales.columns) == SALES_COLUMNS
    assert list(dataset.features.columns) == FEATURE_COLUMNS
    assert list(dataset.stores.columns) == STORE_COLUMNS
    assert dataset.sales.dtypes.astype(str).to_dict() == {
        "store": "int64",
        "dept": "int64",
        "date": "datetime64[ns]",
        "weekly_sales": "float64",
        "is_holiday": "bool",
    }
    features = dataset.features
    assert features["store"].dtype == "int64" and features["date"].dtype == "datetime64[ns]"
    assert (features[FEATURE_COLUMNS[2:-1]].dtypes == "float64").all()
    assert features["is_holiday"].dtype == bool
    assert dataset.stores["store"].dtype == "int64" and dataset.stores["size"].dtype == "int64"
    assert dataset.stores["type"].map(type).eq(str).all()

    sales = dataset.sales
    keys = sales[["store", "dept", "date"]]
    assert not keys.duplicated().any()
    assert keys.equals(keys.sort_values(["store", "dept", "date"]).reset_index(drop=True))
    assert (sales["date"].dt.day_of_week == 4).all() and (features["date"].dt.day_of_week == 4).all()
    assert sales["date"].min() == pd.Timestamp("2010-02-05")
    assert dataset.last_week == pd.Timestamp("2012-10-26")
    assert features["date"].max() == pd.Timestamp("2013-07-26")
    assert not features[["store", "date"]].duplicated().any()
    assert set(sales["store"]) <= set(dataset.stores["store"])
    assert dataset.report == summarise(sales, features, dataset.stores)
    assert dataset.source.startswith("synthetic")


def test_stores_have_types_and_realistic_sizes(full: Dataset) -> None:
    stores = full.stores
    assert set(stores["type"]) == {"A", "B", "C"}
    sizes = stores.groupby("type")["size"]
    assert sizes.min()["A"] >= 150_000 and sizes.max()["A"] <= 220_000
    assert sizes.max()["C"] <= 45_000
    assert sizes.median()["A"] > sizes.median()["B"] > sizes.median()["C"]
    # Bigger stores sell more.
    totals = full.sales.groupby("store")["weekly_sales"].sum()
    by_type = totals.groupby(stores.set_index("store")["type"]).median()
    assert by_type["A"] > by_type["B"] > by_type["C"]


def test_department_codes_are_sparse_and_not_every_store_has_every_department(full: Dataset) -> None:
    codes = np.sort(full.sales["dept"].unique())
    assert codes.min() >= 1 and codes.max() <= 99
    assert (np.diff(codes) > 1).any()  # gaps, like the real 1..99 codes
    per_store = full.sales.groupby("store")["dept"].nunique()
    assert per_store.min() < 80 and per_store.max() <= 80


def test_holiday_rule_reproduces_the_kaggle_weeks() -> None:
    for year, expected in KAGGLE_HOLIDAYS.items():
        weeks = flagged_holiday_weeks(year)
        assert [str(day.date()) for day in weeks.values()] == expected
        assert all(day.day_of_week == 4 for day in weeks.values())
    # The Super Bowl moved to the second Sunday of February in 2022 (Feb 13 -> week ending Feb 18).
    assert flagged_holiday_weeks(2022)["super_bowl"] == pd.Timestamp("2022-02-18")
    # Christmas on a Friday is in the week ending that Friday.
    assert flagged_holiday_weeks(2015)["christmas"] == pd.Timestamp("2015-12-25")


def test_holiday_flags_on_sales_and_features(full: Dataset) -> None:
    expected = {pd.Timestamp(day) for days in KAGGLE_HOLIDAYS.values() for day in days}
    features = full.features
    flagged = set(features.loc[features["is_holiday"], "date"])
    assert flagged == {day for day in expected if day <= features["date"].max()}
    sales_flagged = set(full.sales.loc[full.sales["is_holiday"], "date"])
    assert sales_flagged == {day for day in expected if day <= full.last_week}
    # Thanksgiving week moves between ISO weeks 47 and 48.
    thanksgiving = [pd.Timestamp(days[2]) for days in KAGGLE_HOLIDAYS.values()]
    assert {day.isocalendar().week for day in thanksgiving} == {47, 48}


def test_holiday_peaks_follow_the_calendar(full: Dataset) -> None:
    weekly = full.sales.groupby("date")["weekly_sales"].sum()
    for year in (2010, 2011):
        thanksgiving = flagged_holiday_weeks(year)["thanksgiving"]
        before = weekly[thanksgiving - pd.Timedelta(weeks=4) : thanksgiving - pd.Timedelta(weeks=2)].mean()
        assert weekly[thanksgiving] > 1.15 * before
        # The biggest week of the year is the last full week before Christmas, not the flagged one.
        year_weeks = weekly[str(year)]
        peak = year_weeks.idxmax()
        assert pd.Timestamp(f"{year}-12-18") <= peak <= pd.Timestamp(f"{year}-12-24")
        assert weekly[flagged_holiday_weeks(year)["christmas"]] < weekly[peak]


def test_some_departments_are_seasonal_and_some_flat(full: Dataset) -> None:
    per_dept = full.sales[full.sales["weekly_sales"] > 0].groupby(["dept", "date"])["weekly_sales"].sum()
    variation = per_dept.groupby(level="dept").agg(lambda series: series.std() / series.mean())
    assert variation.max() > 3 * variation.min()


def test_negative_sales_are_small_and_rare(full: Dataset) -> None:
    sales = full.sales["weekly_sales"]
    negative = sales[sales < 0]
    assert 0.001 < len(negative) / len(sales) < 0.006
    assert negative.min() > -1_000
    assert full.report["train.csv negative Weekly_Sales"] == len(negative)


def test_gaps_and_late_starts(full: Dataset) -> None:
    report = full.report
    share = report["train.csv series with gaps inside their span"] / report["train.csv series"]
    assert 0.08 < share < 0.25
    starts = full.sales.groupby(["store", "dept"])["date"].min()
    assert (starts > pd.Timestamp("2010-03-01")).sum() > 10
    assert (
        report["train.csv series with missing weeks"] > report["train.csv series with gaps inside their span"]
    )


def test_markdowns_only_from_november_2011_and_patchy(full: Dataset) -> None:
    features = full.features
    markdowns = features[[f"markdown{k}" for k in range(1, 6)]]
    before = features["date"] < MARKDOWN_START
    assert markdowns[before].isna().all().all()
    after = markdowns[~before]
    assert (after.notna().mean() > 0.3).all() and (after.notna().mean() < 0.98).all()
    assert np.nanmin(after.to_numpy()) > 0


def test_covariates_are_plausible_and_end_missing_like_the_real_file(full: Dataset) -> None:
    features = full.features
    assert features[["temperature", "fuel_price"]].notna().all().all()
    assert features["temperature"].between(-20, 115).all()
    assert features["fuel_price"].between(2.3, 4.6).all()
    # Temperature is seasonal: July is warmer than January.
    month = features["date"].dt.month
    assert (
        features.loc[month == 7, "temperature"].mean() > features.loc[month == 1, "temperature"].mean() + 20
    )
    # CPI and unemployment are missing only at the end of the future covariates.
    missing = features.loc[features["cpi"].isna(), "date"]
    assert missing.min() > full.last_week
    assert missing.nunique() == 13
    assert features["unemployment"].isna().equals(features["cpi"].isna())
    by_date = features.dropna(subset=["cpi"]).groupby("date")["cpi"].mean()
    assert by_date.iloc[-1] > by_date.iloc[0]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        generate_dataset(n_depts=100)
    with pytest.raises(ValueError):
        generate_dataset(n_stores=0)
    with pytest.raises(ValueError):
        generate_dataset(start="2012-10-26", end="2012-10-26")


def test_through_cuts_sales_and_keeps_covariates(small: Dataset) -> None:
    cut = small.through("2011-12-30")
    assert cut.last_week == pd.Timestamp("2011-12-30")
    assert len(cut.features) == len(small.features)
