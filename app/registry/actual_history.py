"""Base data plus the actual sales ingested since: for `train --with-actuals` and the retrain job."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import or_, select

from app.forecasting.data import Dataset
from app.storage import ActualSale, Storage

log = logging.getLogger(__name__)


def actuals_frame(storage: Storage, lineage: str | None = None, *, untagged: bool = True) -> pd.DataFrame:
    """The actual_sales table as a sales frame (store, dept, date, weekly_sales, is_holiday).

    With a lineage, only the rows of that data (and, when `untagged`, those ingested before lineages
    were recorded): another dataset's actuals never extend this one's history. The weekly loop asks
    for its lineage's rows only (`untagged=False`): what it scores and forecasts from is never mixed.
    """
    query = select(
        ActualSale.store,
        ActualSale.dept,
        ActualSale.week,
        ActualSale.weekly_sales,
        ActualSale.is_holiday,
    )
    if lineage is not None or not untagged:
        match = ActualSale.lineage == lineage if lineage is not None else ActualSale.lineage.is_(None)
        query = query.where(or_(match, ActualSale.lineage.is_(None)) if untagged else match)
    with storage.session() as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=["store", "dept", "date", "weekly_sales", "is_holiday"])
    if frame.empty:
        return frame
    dates = pd.to_datetime(frame["date"])
    # Weeks end on Friday: a date inside a week is that week's Friday (as the loader and forecaster do).
    friday = dates + pd.to_timedelta((4 - dates.dt.day_of_week) % 7, unit="D")
    frame["date"] = friday.astype("datetime64[ns]")
    frame["store"] = frame["store"].astype("int64")
    frame["dept"] = frame["dept"].astype("int64")
    frame["weekly_sales"] = frame["weekly_sales"].astype("float64")
    frame["is_holiday"] = frame["is_holiday"].astype(bool)
    return frame.drop_duplicates(["store", "dept", "date"], keep="last")


def dataset_with_actuals(dataset: Dataset, storage: Storage) -> Dataset:
    """`dataset` with the ingested actual sales added; an actual replaces a base row for the same week.

    Actuals for stores the dataset does not know are left out (there are no covariates for them), and
    so are actuals tagged with another data lineage. The lineage is kept: same stores and covariates.
    """
    actuals = actuals_frame(storage, dataset.lineage())
    if actuals.empty:
        log.info("no actual sales ingested: training on the base data only")
        return dataset
    known = actuals["store"].isin(dataset.stores["store"])
    if not known.all():
        log.warning("ignoring %d actual sales rows for stores not in the data", int((~known).sum()))
        actuals = actuals[known]
    base = dataset.sales
    keys = ["store", "dept", "date"]
    replaced = base.merge(actuals[keys], on=keys, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    merged = pd.concat([base[~replaced], actuals[base.columns.tolist()]], ignore_index=True)
    merged = merged.astype(base.dtypes.to_dict())
    merged = merged.sort_values(keys, kind="stable").reset_index(drop=True)
    added = len(actuals) - int(replaced.sum())
    log.info("with actuals: %d rows added, %d replaced", added, int(replaced.sum()))
    report = {
        **dataset.report,
        "actual_sales rows added": added,
        "actual_sales rows replacing base": int(replaced.sum()),
    }
    return Dataset(
        sales=merged,
        features=dataset.features,
        stores=dataset.stores,
        source=f"{dataset.source} + {len(actuals)} actual_sales rows",
        report=report,
    )
