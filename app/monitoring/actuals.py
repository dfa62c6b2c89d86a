"""Actual weekly sales, stored after the fact, so the performance job can score logged predictions.

Every row has passed sales_check's one check first. The upsert is idempotent: a row equal to the
stored one is left untouched, so re-importing a file changes nothing (not even `ingested_at`); a row
that would change a stored week, or a week of the data the served model was trained on, is refused
unless it comes as an explicit Correction, which is recorded (old and new values, who, when, why).
Rows are tagged with the lineage of the production model's data when they arrive.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.config import Config
from app.limits import more_problems
from app.monitoring.sales_check import (
    CSV_NAME,
    MAX_ERRORS,
    ActualsError,
    Bounds,
    json_field,
    parse_csv,
    parse_rows,
)
from app.registry.lineage import production_lineage
from app.storage import ActualSale, ActualSaleCorrection, utcnow

log = logging.getLogger(__name__)

_TABLE = ActualSale.__table__


class StoredWeekConflict(ActualsError):
    """Rows that would change stored weeks without an explicit correction (nothing was written)."""


@dataclass
class ImportResult:
    received: int
    inserted: int
    updated: int
    unchanged: int
    corrected: int = 0  # of `updated`, rows whose stored values a correction changed (recorded)

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


# Parsing


# Upsert


_UPSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[tuple[int, int, dt.date]]:
    """Insert rows whose keys were not stored; the keys inserted. A key that a concurrent import stored
    in the meantime is skipped (SQLite, PostgreSQL), for the caller to compare as a stored week."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERTS:
        session.execute(insert(_TABLE), rows)
        return {(r["store"], r["dept"], r["week"]) for r in rows}
    statement = (
        _UPSERTS[dialect](_TABLE)
        .on_conflict_do_nothing(index_elements=["store", "dept", "week"])
        .returning(_TABLE.c.store, _TABLE.c.dept, _TABLE.c.week)
    )
    return {(int(s), int(d), w) for s, d, w in session.execute(statement, rows).all()}


@dataclass(frozen=True)
class Correction:
    """The authority to change stored weeks: who (a verified actor) and why; every change is recorded."""

    by: str
    reason: str


CORRECTION_HINT = "a stored week changes only by an explicit correction, with the admin token and a reason"


def _stored_conflicts(changed: pd.DataFrame, json_rows: bool, held: str = "stored") -> StoredWeekConflict:
    """Rows that would change stored values, refused by row and field (re-sending a stored value is fine);
    `held` says where the old value is kept."""
    errors: list[dict[str, Any]] = []
    for row in changed.sort_values("line").head(MAX_ERRORS).itertuples(index=False):
        sales_differ = not np.isclose(row.weekly_sales, float(row.old_sales), rtol=0, atol=1e-9)
        column = "Weekly_Sales" if sales_differ else "IsHoliday"
        old = f"{float(row.old_sales):,.2f}" if sales_differ else str(bool(row.old_holiday)).upper()
        new = f"{row.weekly_sales:,.2f}" if sales_differ else str(bool(row.is_holiday)).upper()
        where = f"rows[{row.line - 1}].{json_field(column)}" if json_rows else column
        errors.append(
            {
                "field": where,
                "line": int(row.line),
                "message": (
                    f"store {row.store} dept {row.dept} week {row.week} is {held} as {old}; "
                    f"{new} would change it: {CORRECTION_HINT}"
                ),
            }
        )
    rest = len(changed) - len(errors)
    if rest:
        errors.append(more_problems(rest, line=None))
    return StoredWeekConflict(errors, status=422)


def _stored(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    """The stored rows of the frame's stores and weeks (old_sales, old_holiday, old_lineage)."""
    stores = sorted({int(s) for s in frame["store"]})
    first, last = min(frame["week"]), max(frame["week"])
    rows = session.execute(
        select(
            _TABLE.c.store,
            _TABLE.c.dept,
            _TABLE.c.week,
            _TABLE.c.weekly_sales,
            _TABLE.c.is_holiday,
            _TABLE.c.lineage,
        ).where(and_(_TABLE.c.store.in_(stores), _TABLE.c.week >= first, _TABLE.c.week <= last))
    ).all()
    return pd.DataFrame(rows, columns=["store", "dept", "week", "old_sales", "old_holiday", "old_lineage"])


def _in_data(new: pd.DataFrame) -> pd.DataFrame:
    """The rows of `new` whose week the served model's data holds with another value (`data_sales`,
    check_table's; old_sales: that value; the data keeps no holiday flag, so old_holiday is the row's)."""
    held = new["data_sales"].to_numpy(float) if "data_sales" in new else np.full(len(new), np.nan)
    differs = ~np.isnan(held) & ~np.isclose(new["weekly_sales"].to_numpy(float), held, rtol=0, atol=0.005)
    return new[differs].assign(old_sales=held[differs], old_holiday=new["is_holiday"][differs])


def upsert_actuals(
    session: Session,
    frame: pd.DataFrame,
    *,
    model_name: str = Config.MODEL_NAME,
    correction: Correction | None = None,
) -> ImportResult:
    """Insert new keys, leave equal ones alone; the caller's session commits.

    A row that would change a stored week's sales or holiday flag is refused (StoredWeekConflict, 422;
    the caller's session rolls back, so nothing is written) unless `correction` is given; then each change
    is recorded in actual_sale_corrections with the old and new values, who and why. A week of the
    sales the served model was trained on (`data_sales`) is held the same way: sending its value again
    is fine, another value is a correction. A week stored by a
    concurrent import between our read and our insert is compared the same way. Every row written is
    tagged with the data lineage of `model_name`'s production version: actuals are only scored against
    forecasts of models of the same data. A row re-sent while production is a model of other data is
    re-tagged (an update, not a change of its values).
    """
    if frame.empty:
        return ImportResult(0, 0, 0, 0)
    if "line" not in frame:
        frame = frame.assign(line=np.arange(1, len(frame) + 1))
    json_rows = bool(frame.attrs.get("json_rows"))
    lineage = production_lineage(session, model_name)
    now = utcnow()
    counts = {"inserted": 0, "updated": 0, "unchanged": 0, "corrected": 0}
    pending = frame
    for _ in range(2):  # the second pass compares the weeks a concurrent import stored meanwhile
        merged = pending.merge(
            _stored(session, pending), on=["store", "dept", "week"], how="left", indicator=True
        )
        new = merged[merged["_merge"] == "left_only"]
        known = merged[merged["_merge"] == "both"]
        _update_known(session, known, lineage, correction, json_rows, now, counts)
        in_data = _in_data(new)
        if len(in_data) and correction is None:
            raise _stored_conflicts(in_data, json_rows, held="in the served model's data")
        if len(in_data):
            _record_corrections(session, in_data, correction, now)
            counts["corrected"] += len(in_data)
        inserted = _insert_new(
            session,
            [
                {
                    "store": int(s),
                    "dept": int(d),
                    "week": w,
                    "weekly_sales": float(v),
                    "is_holiday": bool(h),
                    "ingested_at": now,
                    "lineage": lineage,
                }
                for s, d, w, v, h in new[["store", "dept", "week", "weekly_sales", "is_holiday"]].itertuples(
                    index=False
                )
            ],
        )
        counts["inserted"] += len(inserted)
        keys = list(zip(new["store"].astype(int), new["dept"].astype(int), new["week"], strict=True))
        raced = np.array([key not in inserted for key in keys], dtype=bool)
        if not raced.any():
            break
        pending = pending.merge(new.loc[raced, ["store", "dept", "week"]], on=["store", "dept", "week"])
        pending.attrs["json_rows"] = json_rows
    result = ImportResult(
        len(frame), counts["inserted"], counts["updated"], counts["unchanged"], counts["corrected"]
    )
    log.info("actuals: %s (%d corrected)", result.to_dict(), result.corrected)
    return result


def _update_known(
    session: Session,
    known: pd.DataFrame,
    lineage: str | None,
    correction: Correction | None,
    json_rows: bool,
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    """Stored keys: equal ones left alone, re-tagged ones updated, changed ones refused or corrected."""
    if known.empty:
        return
    values_differ = ~np.isclose(
        known["weekly_sales"], known["old_sales"].astype("float64"), rtol=0, atol=1e-9
    ) | (known["is_holiday"].astype(bool) != known["old_holiday"].astype(bool))
    corrected = known[values_differ]
    if len(corrected) and correction is None:
        raise _stored_conflicts(corrected, json_rows)
    changed = known[values_differ | (known["old_lineage"].fillna("").astype(str) != (lineage or ""))]
    if len(changed):
        statement = (
            update(_TABLE)
            .where(
                _TABLE.c.store == bindparam("k_store"),
                _TABLE.c.dept == bindparam("k_dept"),
                _TABLE.c.week == bindparam("k_week"),
            )
            .values(
                weekly_sales=bindparam("v_sales"),
                is_holiday=bindparam("v_holiday"),
                ingested_at=bindparam("v_at"),
                lineage=bindparam("v_lineage"),
            )
        )
        rows = [
            {
                "k_store": int(s),
                "k_dept": int(d),
                "k_week": w,
                "v_sales": float(v),
                "v_holiday": bool(h),
                "v_at": now,
                "v_lineage": lineage,
            }
            for s, d, w, v, h in changed[["store", "dept", "week", "weekly_sales", "is_holiday"]].itertuples(
                index=False
            )
        ]
        session.connection().execute(statement, rows)
    if len(corrected) and correction is not None:
        _record_corrections(session, corrected, correction, now)
    counts["updated"] += len(changed)
    counts["unchanged"] += len(known) - len(changed)
    counts["corrected"] += len(corrected)


def _record_corrections(
    session: Session, corrected: pd.DataFrame, correction: Correction, now: dt.datetime
) -> None:
    session.execute(
        insert(ActualSaleCorrection.__table__),
        [
            {
                "store": int(row.store),
                "dept": int(row.dept),
                "week": row.week,
                "old_weekly_sales": float(row.old_sales),
                "new_weekly_sales": float(row.weekly_sales),
                "old_is_holiday": bool(row.old_holiday),
                "new_is_holiday": bool(row.is_holiday),
                "corrected_at": now,
                "corrected_by": correction.by[:64],
                "reason": correction.reason,
            }
            for row in corrected.itertuples(index=False)
        ],
    )
    log.warning(
        "actuals: %d stored week(s) corrected by %s: %s", len(corrected), correction.by, correction.reason
    )


def corrections(session: Session, limit: int = 100) -> list[ActualSaleCorrection]:
    """The newest recorded corrections first."""
    query = select(ActualSaleCorrection).order_by(ActualSaleCorrection.id.desc()).limit(limit)
    return list(session.scalars(query))


def import_csv(
    session: Session,
    raw: bytes | str,
    name: str = CSV_NAME,
    *,
    model_name: str = Config.MODEL_NAME,
    bounds: Bounds | None = None,
    correction: Correction | None = None,
) -> ImportResult:
    """A train.csv-format file checked (check_table) and upserted; all rows or none."""
    frame = parse_csv(raw, name, bounds)
    return upsert_actuals(session, frame, model_name=model_name, correction=correction)


def import_rows(
    session: Session,
    rows: Any,
    *,
    model_name: str = Config.MODEL_NAME,
    bounds: Bounds | None = None,
    correction: Correction | None = None,
) -> ImportResult:
    """JSON rows checked (check_table) and upserted; all rows or none."""
    return upsert_actuals(session, parse_rows(rows, bounds), model_name=model_name, correction=correction)
