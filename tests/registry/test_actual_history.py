"""Training data with the actual sales ingested since."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from app.registry.actual_history import dataset_with_actuals
from app.storage import ActualSale


def test_no_actuals_leaves_the_data_alone(storage, small_dataset):
    assert dataset_with_actuals(small_dataset, storage) is small_dataset


def test_actuals_are_added_and_replace_the_same_week(storage, small_dataset):
    sales = small_dataset.sales
    store, dept = int(sales["store"].iloc[0]), int(sales["dept"].iloc[0])
    last = small_dataset.last_week.date()
    existing = (sales["date"].iloc[5]).date()
    with storage.session() as session:
        session.add_all(
            [
                ActualSale(store=store, dept=dept, week=last + dt.timedelta(weeks=1), weekly_sales=111.0),
                ActualSale(
                    store=store, dept=dept, week=last + dt.timedelta(weeks=2, days=-2), weekly_sales=222.0
                ),
                ActualSale(store=store, dept=dept, week=existing, weekly_sales=-5.0),
                ActualSale(
                    store=999, dept=1, week=last + dt.timedelta(weeks=1), weekly_sales=1.0
                ),  # unknown store
            ]
        )
    merged = dataset_with_actuals(small_dataset, storage)
    assert len(merged.sales) == len(sales) + 2
    assert merged.last_week == pd.Timestamp(last + dt.timedelta(weeks=2))  # a Wednesday maps to its Friday
    assert (merged.sales["date"].dt.day_of_week == 4).all()
    series = merged.sales[(merged.sales["store"] == store) & (merged.sales["dept"] == dept)].set_index("date")
    assert series.loc[pd.Timestamp(existing), "weekly_sales"] == -5.0
    assert series.loc[pd.Timestamp(last + dt.timedelta(weeks=1)), "weekly_sales"] == 111.0
    assert not merged.sales.duplicated(["store", "dept", "date"]).any()
    assert dict(merged.sales.dtypes) == dict(sales.dtypes)
    assert 999 not in set(merged.sales["store"])
    assert merged.fingerprint() != small_dataset.fingerprint()
    assert "actual_sales" in merged.source
