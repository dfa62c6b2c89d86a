"""Actual covariates (features.csv rows), ingested as weeks arrive: drift compares them with the assumed.

Input is a CSV in features.csv's format (Store,Date,Temperature,Fuel_Price,MarkDown1..5,CPI,
Unemployment,IsHoliday; NA for unknown values). It goes through the loader's own column parsers
(app/forecasting/data.py), as actuals.py does for sales, so mistakes get the same messages by line and
column. The upsert is idempotent: a row equal to the stored one is left untouched.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from app.forecasting import data as loader
from app.forecasting import inputs
from app.forecasting.data import COVARIATE_COLUMNS, FEATURE_COLUMNS
from app.limits import cap_details
from app.monitoring.actuals import ActualsError, ImportResult
from app.monitoring.sales_check import upload_table
from app.storage import ActualFeature, Storage, utcnow

log = logging.getLogger(__name__)

CSV_NAME = "features.csv"
HEADER = loader.FEATURES_HEADER
NUMERIC = ("Store", *loader.KAGGLE_COVARIATES.values())
MAX_ERRORS = 20
_TABLE = ActualFeature.__table__


class FeaturesError(ActualsError):
    """A features file that cannot be imported; `errors` are {"field", "line", "message"} dicts."""


def parse_features_csv(raw: bytes | str, name: str = CSV_NAME) -> pd.DataFrame:
    """A features.csv-format file as Dataset.features: store, date, the covariates, is_holiday."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    table = upload_table(raw, name, HEADER, NUMERIC, FeaturesError)
    errors: list[dict[str, Any]] = []
    parsed: dict[str, Any] = {}

    def attempt(column: str, parse: Any) -> None:
        try:
            parsed[column] = parse()
        except loader.DataError as error:
            message = str(error).split(": ", 1)[-1] if error.line is not None or error.column else str(error)
            errors.append({"field": error.column or "", "line": error.line, "message": message})

    attempt("Store", lambda: inputs.parse_int(table, "Store"))
    attempt("Date", lambda: inputs.parse_friday(table, "Date"))
    for column, kaggle in loader.KAGGLE_COVARIATES.items():
        attempt(column, lambda kaggle=kaggle: inputs.parse_float(table, kaggle, required=False)[0])
    attempt("IsHoliday", lambda: inputs.parse_bool(table, "IsHoliday"))
    if "Store" in parsed and (parsed["Store"] < 1).any():
        i = int(np.argmax(parsed["Store"] < 1))
        error = table.fail(i, "Store", f"must be a positive whole number, got {parsed['Store'][i]}")
        errors.append({"field": "Store", "line": error.line, "message": str(error).split(": ", 1)[-1]})
    if not errors:
        keys = pd.DataFrame({"store": parsed["Store"], "date": parsed["Date"]})
        attempt("keys", lambda: inputs.check_unique(table, keys, ["Store", "Date"]))
    if errors:
        errors.sort(key=lambda e: (e["line"] or 0, e["field"]))
        raise FeaturesError(cap_details(errors, MAX_ERRORS))
    frame = pd.DataFrame(
        {
            "store": parsed["Store"].astype("int64"),
            "date": pd.to_datetime(parsed["Date"]),
            **{c: np.asarray(parsed[c], dtype="float64") for c in COVARIATE_COLUMNS},
            "is_holiday": np.asarray(parsed["IsHoliday"], dtype=bool),
        },
        columns=FEATURE_COLUMNS,
    )
    return frame.sort_values(["store", "date"], kind="stable").reset_index(drop=True)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | np.isclose(a, b, rtol=0, atol=1e-9)


def upsert_features(session: Session, frame: pd.DataFrame) -> ImportResult:
    """Insert new store-weeks, update changed ones, leave equal ones alone; the caller's session commits."""
    if frame.empty:
        return ImportResult(0, 0, 0, 0)
    frame = frame.assign(week=pd.to_datetime(frame["date"]).dt.date)
    stores = sorted({int(s) for s in frame["store"]})
    existing = pd.DataFrame(
        session.execute(
            select(
                _TABLE.c.store, _TABLE.c.week, *(_TABLE.c[c] for c in COVARIATE_COLUMNS), _TABLE.c.is_holiday
            ).where(
                _TABLE.c.store.in_(stores),
                _TABLE.c.week >= frame["week"].min(),
                _TABLE.c.week <= frame["week"].max(),
            )
        ).all(),
        columns=["store", "week", *(f"old_{c}" for c in COVARIATE_COLUMNS), "old_is_holiday"],
    )
    merged = frame.merge(existing, on=["store", "week"], how="left", indicator=True)
    new = merged[merged["_merge"] == "left_only"]
    known = merged[merged["_merge"] == "both"]
    same = np.ones(len(known), dtype=bool)
    for c in COVARIATE_COLUMNS:
        same &= _same(known[c].to_numpy(float), pd.to_numeric(known[f"old_{c}"]).to_numpy(float))
    same &= known["is_holiday"].astype(bool).to_numpy() == known["old_is_holiday"].astype(bool).to_numpy()
    changed = known[~same]
    now = utcnow()

    def record(row: Any) -> dict[str, Any]:
        values = {
            c: (None if pd.isna(getattr(row, c)) else float(getattr(row, c))) for c in COVARIATE_COLUMNS
        }
        return {"store": int(row.store), "week": row.week, **values, "is_holiday": bool(row.is_holiday)}

    if len(new):
        session.execute(
            insert(_TABLE), [{**record(r), "ingested_at": now} for r in new.itertuples(index=False)]
        )
    if len(changed):
        statement = (
            update(_TABLE)
            .where(_TABLE.c.store == bindparam("k_store"), _TABLE.c.week == bindparam("k_week"))
            .values(
                **{c: bindparam(f"v_{c}") for c in (*COVARIATE_COLUMNS, "is_holiday")},
                ingested_at=bindparam("v_at"),
            )
        )
        rows = []
        for r in changed.itertuples(index=False):
            values = record(r)
            rows.append(
                {
                    "k_store": values.pop("store"),
                    "k_week": values.pop("week"),
                    **{f"v_{k}": v for k, v in values.items()},
                    "v_at": now,
                }
            )
        session.connection().execute(statement, rows)
    result = ImportResult(len(frame), len(new), len(changed), len(known) - len(changed))
    log.info("actual features: %s", result.to_dict())
    return result


def import_features_csv(session: Session, raw: bytes | str, name: str = CSV_NAME) -> ImportResult:
    return upsert_features(session, parse_features_csv(raw, name))


def features_frame(storage: Storage, since: dt.date | None = None) -> pd.DataFrame:
    """The ingested covariates (from week `since` on) in Dataset.features' format."""
    query = select(
        _TABLE.c.store, _TABLE.c.week, *(_TABLE.c[c] for c in COVARIATE_COLUMNS), _TABLE.c.is_holiday
    ).order_by(_TABLE.c.store, _TABLE.c.week)
    if since is not None:
        query = query.where(_TABLE.c.week >= since)
    with storage.engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=["store", "date", *COVARIATE_COLUMNS, "is_holiday"])
    return pd.DataFrame(
        {
            "store": frame["store"].astype("int64"),
            "date": pd.to_datetime(frame["date"]),
            **{c: pd.to_numeric(frame[c]).astype("float64") for c in COVARIATE_COLUMNS},
            "is_holiday": frame["is_holiday"].astype(bool),
        },
        columns=FEATURE_COLUMNS,
    )


def newest_week(storage: Storage) -> dt.date | None:
    """The newest week of ingested covariates, None when none were ingested."""
    with storage.engine.connect() as connection:
        return connection.execute(select(func.max(_TABLE.c.week))).scalar()
