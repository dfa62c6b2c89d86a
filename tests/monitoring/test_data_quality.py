"""Data quality of ingested actuals: every kind of finding is reported, a clean batch is quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.monitoring import alerts
from app.monitoring.data_quality import data_quality, report_data_quality


def _history(small_dataset) -> pd.DataFrame:
    sales = small_dataset.sales[["store", "dept", "date", "weekly_sales"]]
    return sales[sales["date"] < sales["date"].max()].reset_index(drop=True)


def _newest(small_dataset) -> pd.DataFrame:
    sales = small_dataset.sales[["store", "dept", "date", "weekly_sales"]]
    return sales[sales["date"] == sales["date"].max()].reset_index(drop=True)


def test_a_clean_week_is_quiet(small_dataset):
    report = data_quality(_history(small_dataset), _newest(small_dataset))
    assert report["severity"] is None and report["issues"] == [], report


def test_every_finding_is_reported(small_dataset):
    history, new = _history(small_dataset), _newest(small_dataset)
    gone = new.iloc[0]
    new = new.iloc[1:].copy()  # a vanished series
    new.loc[new.index[0], "weekly_sales"] = new["weekly_sales"].abs().max() * 50 + 1e6  # an outlier
    extra = pd.DataFrame(
        {"store": [1], "dept": [999], "date": [new["date"].iloc[0]], "weekly_sales": [500.0]}
    )
    late = history[history["date"] == history["date"].max() - pd.Timedelta(weeks=3)].head(2)
    batch = pd.concat(
        [new, new.head(1), extra, late], ignore_index=True
    )  # a duplicate, a new series, late rows
    report = data_quality(history, batch)
    assert report["duplicates"]["count"] == 1
    assert report["new_series"]["examples"] == [[1, 999]]
    assert [int(gone["store"]), int(gone["dept"])] in report["vanished_series"]["examples"]
    assert report["late_weeks"]["count"] == 1 and report["late_weeks"]["rows"] == 2
    assert report["outliers"]["count"] == 1
    assert report["severity"] == "warning"


def test_ordinary_noise_is_not_an_outlier(small_dataset):
    new = _newest(small_dataset)
    noisy = new.assign(
        weekly_sales=new["weekly_sales"] * np.random.default_rng(0).uniform(0.8, 1.2, len(new))
    )
    assert data_quality(_history(small_dataset), noisy)["outliers"]["count"] == 0


def test_findings_open_and_a_clean_batch_resolves_the_alert(mon_app, small_dataset):
    history, new = _history(small_dataset), _newest(small_dataset)
    storage = mon_app.extensions["storage"]
    with storage.session() as session:
        report = report_data_quality(session, history, pd.concat([new, new.head(1)], ignore_index=True))
        (alert,) = alerts.open_alerts(session, "data_quality")
        assert (
            alert.id == report["alert_id"] and alert.severity == "warning" and "duplicates" in alert.message
        )
    with storage.session() as session:
        report_data_quality(session, history, new)
        assert alerts.open_alerts(session, "data_quality") == []
