"""Actual weekly sales, ingested after the fact, so the performance job can score logged predictions.

Input is a CSV in train.csv's format (Store,Dept,Date,Weekly_Sales,IsHoliday) or JSON rows
({"store", "dept", "date" or "week", "weekly_sales", optional "is_holiday"}). Both go through the
loader's own column parsers (app/forecasting/data.py), so the same mistakes get the same messages,
by line and column. The upsert is idempotent: a row equal to the stored one is left untouched,
so re-importing a file changes nothing (not even `ingested_at`). Rows are tagged with the lineage of
the production model's data when they arrive.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.config import Config
from app.forecasting import calendar
from app.forecasting import data as loader
from app.forecasting.calendar import is_holiday_week
from app.limits import InputRejected, cap_details, csv_header
from app.registry.versions import production_lineage
from app.storage import ActualSale, utcnow

log = logging.getLogger(__name__)

CSV_NAME = "actuals.csv"
HEADER = loader.TRAIN_HEADER  # Store, Dept, Date, Weekly_Sales, IsHoliday
JSON_KEYS = {
    "Store": ("store", "Store"),
    "Dept": ("dept", "Dept"),
    "Date": ("date", "week", "Date"),
    "Weekly_Sales": ("weekly_sales", "sales", "Weekly_Sales"),
    "IsHoliday": ("is_holiday", "IsHoliday"),
}
NUMERIC = ("Store", "Dept", "Weekly_Sales")
MAX_ERRORS = 20
_TABLE = ActualSale.__table__


@dataclass
class ActualsError(ValueError):
    """Input that cannot be imported; `errors` are {"field", "line", "message"} dicts, in line order."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(
            e["message"] if not e.get("field") else f"{e['field']}: {e['message']}" for e in self.errors
        )


@dataclass
class ImportResult:
    received: int
    inserted: int
    updated: int
    unchanged: int

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


# Parsing


def upload_table(
    raw: bytes,
    name: str,
    header: Sequence[str] = HEADER,
    numeric: Sequence[str] = NUMERIC,
    error: type[ActualsError] = ActualsError,
) -> loader._Table:
    """Like the loader's _read_table, from uploaded bytes: one reader for the sales and features files."""

    def fail(field: str, line: int | None, message: str) -> ActualsError:
        return error([{"field": field, "line": line, "message": message}])

    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not raw.strip():
        raise fail("", 1, f"empty file (expected the header {','.join(header)})")
    try:
        csv_header(raw)  # bounded: pandas never sees 100,000 columns or a column named twice
    except InputRejected as refused:
        raise error([{**item, "line": 1} for item in refused.details]) from None
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError as exc:  # the reason without pandas' own words ("C error")
        reason = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise fail("", None, f"malformed CSV: {reason}") from exc
    except UnicodeDecodeError as exc:
        raise fail("", raw[: exc.start].count(b"\n") + 1, "not UTF-8 text") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in header if c not in frame.columns]
    if missing:
        raise error(
            [
                {"field": c, "line": 1, "message": f"missing column {c}; expected header {','.join(header)}"}
                for c in missing
            ]
        )
    frame = frame[list(header)]
    lines = np.arange(2, len(frame) + 2)
    blank = (frame.fillna("") == "").all(axis=1).to_numpy()
    frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    return loader._Table(name, _loader_frame(frame, header, numeric), lines, int(blank.sum()))


def _loader_frame(
    frame: pd.DataFrame, header: Sequence[str] = HEADER, numeric: Sequence[str] = NUMERIC
) -> pd.DataFrame:
    """Text columns as the loader holds them: NA tokens as NaN, numbers as text, the rest categorical."""
    out = pd.DataFrame(index=frame.index)
    for column in header:
        text = frame[column].fillna("").astype(str).str.strip()
        text = text.where(~text.isin(loader._NA_TOKENS))
        out[column] = text if column in numeric else text.astype("category")
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _table_from_rows(rows: Sequence[Any]) -> tuple[loader._Table, np.ndarray]:
    """JSON rows as the loader's table (the 'line' of row i is i + 1), and which rows gave no is_holiday."""
    records, errors, no_holiday = [], [], []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.append({"field": f"rows[{i}]", "line": i + 1, "message": "each row must be a JSON object"})
            continue
        record = {}
        for column, keys in JSON_KEYS.items():
            value = next((row[k] for k in keys if k in row), None)
            if column == "IsHoliday" and value is None:
                value = False  # replaced by the holiday calendar after parsing
            record[column] = _text(value)
        no_holiday.append(not any(k in row for k in JSON_KEYS["IsHoliday"]))
        records.append(record)
    if errors:
        raise ActualsError(cap_details(errors, MAX_ERRORS))
    frame = _loader_frame(pd.DataFrame.from_records(records, columns=HEADER))
    return loader._Table("rows", frame, np.arange(1, len(frame) + 1), 0), np.array(no_holiday, dtype=bool)


def _json_field(column: str | None) -> str:
    names = {
        "Store": "store",
        "Dept": "dept",
        "Date": "date",
        "Weekly_Sales": "weekly_sales",
        "IsHoliday": "is_holiday",
    }
    return names.get(column or "", column or "")


@dataclass(frozen=True)
class Bounds:
    """What a plausible week of actual sales is, judged against the served model's history.

    A week no later than `last_week` (the current week, and the last week of the features table when
    a model is served); weekly sales whose size is at most `multiple` times the series' largest week
    so far, or times a typical series' largest when the series is new or small (a -99,999,999 typo
    or a pasted total is refused, a holiday spike is not).
    """

    last_week: dt.date
    last_week_rule: str
    multiple: float
    series_max: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))  # by (store, dept)
    typical_max: float = 0.0


def bounds_for(model: Any, today: dt.date, multiple: float, weeks_ahead: int = 1) -> Bounds:
    """Bounds from the served Forecaster (None: only the calendar rule) on `today`."""
    last = calendar.friday_on_or_after(today) + dt.timedelta(weeks=weeks_ahead - 1)
    rule = f"after {last}, the current week"
    if model is None:
        return Bounds(last, rule, multiple)
    features_end = calendar.week_date(model.covariates.last_week)[0].date()
    if features_end < last:
        last, rule = features_end, f"after {features_end}, the last week of the features table"
    peaks = np.nanmax(np.abs(model.panel.values), axis=1, initial=0.0)
    keys = model.panel.keys()
    series_max = pd.Series(
        [peaks[i] for i in keys.values()], index=pd.MultiIndex.from_tuples(list(keys)), dtype="float64"
    )
    typical = float(np.median(peaks)) if len(peaks) else 0.0
    return Bounds(last, rule, multiple, series_max, typical)


def _implausible(parsed: dict[str, Any], bounds: Bounds) -> tuple[list[tuple[int, str, str]], int]:
    """(row, column, reason) of the first rows outside `bounds` (MAX_ERRORS per rule) and how many in all."""
    found: list[tuple[int, str, str]] = []
    weeks = np.asarray(parsed["Date"], dtype="datetime64[D]")
    late = np.flatnonzero(weeks > np.datetime64(bounds.last_week))
    for i in late[:MAX_ERRORS]:
        found.append((int(i), "Date", f"{weeks[i]} is {bounds.last_week_rule}"))
    total = len(late)
    if bounds.multiple > 0 and bounds.typical_max > 0:
        sales = np.asarray(parsed["Weekly_Sales"], dtype="float64")
        peaks = bounds.series_max.reindex(pd.MultiIndex.from_arrays([parsed["Store"], parsed["Dept"]]))
        peak = np.maximum(peaks.fillna(0.0).to_numpy(), bounds.typical_max)
        large = np.flatnonzero(np.abs(sales) > bounds.multiple * peak)
        for i in large[:MAX_ERRORS]:
            reason = (
                f"{sales[i]:,.2f} is more than {bounds.multiple:g} times the series' largest week "
                f"({peak[i]:,.2f}); a typo or a total?"
            )
            found.append((int(i), "Weekly_Sales", reason))
        total += len(large)
    return found, total


def _parse(
    table: loader._Table,
    *,
    no_holiday: np.ndarray | None = None,
    json_rows: bool = False,
    bounds: Bounds | None = None,
) -> pd.DataFrame:
    """Every column parsed by the loader's helpers; collects errors of all columns."""
    errors: list[dict[str, Any]] = []
    parsed: dict[str, Any] = {}

    def add(error: loader.DataError) -> None:
        message = str(error).split(": ", 1)[-1] if error.line is not None or error.column else str(error)
        if json_rows:
            where = f"rows[{error.line - 1}].{_json_field(error.column)}" if error.line else "rows"
            errors.append({"field": where, "line": error.line, "message": message})
        else:
            errors.append({"field": error.column or "", "line": error.line, "message": message})

    def attempt(column: str, parse: Any) -> None:
        try:
            parsed[column] = parse()
        except loader.DataError as error:
            add(error)

    attempt("Store", lambda: loader._parse_int(table, "Store"))
    attempt("Dept", lambda: loader._parse_int(table, "Dept"))
    attempt("Date", lambda: loader._parse_friday(table, "Date"))
    attempt("Weekly_Sales", lambda: loader._parse_float(table, "Weekly_Sales", required=True)[0])
    attempt("IsHoliday", lambda: loader._parse_bool(table, "IsHoliday"))
    for column in ("Store", "Dept"):
        if column in parsed and (parsed[column] < 1).any():
            i = int(np.argmax(parsed[column] < 1))
            add(table.fail(i, column, f"must be a positive whole number, got {parsed[column][i]}"))
    if not errors:
        keys = pd.DataFrame({"store": parsed["Store"], "dept": parsed["Dept"], "date": parsed["Date"]})
        attempt("keys", lambda: loader._check_unique(table, keys, ["Store", "Dept", "Date"]))
    if not errors and bounds is not None:
        implausible, total = _implausible(parsed, bounds)
        for i, column, reason in implausible:
            add(table.fail(i, column, reason))
        if total > len(implausible):
            rest = total - len(implausible)
            errors.append({"field": "details", "line": None, "message": f"and {rest:,} more", "count": rest})
    if errors:
        errors.sort(key=lambda e: (e["field"] == "details", e["line"] or 0, e["field"]))  # counts last
        raise ActualsError(cap_details(errors, MAX_ERRORS))
    weeks = pd.to_datetime(parsed["Date"])
    holiday = np.asarray(parsed["IsHoliday"], dtype=bool).copy()
    if no_holiday is not None and no_holiday.any():
        holiday[no_holiday] = np.asarray(is_holiday_week(weeks[no_holiday]), dtype=bool)
    return pd.DataFrame(
        {
            "store": parsed["Store"].astype("int64"),
            "dept": parsed["Dept"].astype("int64"),
            "week": weeks.date if hasattr(weeks, "date") else weeks,
            "weekly_sales": parsed["Weekly_Sales"].astype("float64"),
            "is_holiday": np.asarray(holiday, dtype=bool),
        }
    )


def parse_csv(raw: bytes | str, name: str = CSV_NAME, bounds: Bounds | None = None) -> pd.DataFrame:
    """A train.csv-format file as a frame of store, dept, week (date), weekly_sales, is_holiday.

    With `bounds` (uploads over HTTP), implausible rows are refused too; the CLI's import is trusted.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return _parse(upload_table(raw, name), bounds=bounds)


def parse_rows(rows: Any, bounds: Bounds | None = None) -> pd.DataFrame:
    """JSON rows (a list, or {"rows": [...]}) as the same frame; errors name rows[i].field."""
    if isinstance(rows, Mapping) and "rows" in rows:
        rows = rows["rows"]
    if not isinstance(rows, list) or not rows:
        raise ActualsError([{"field": "rows", "line": None, "message": "expected a non-empty list of rows"}])
    table, no_holiday = _table_from_rows(rows)
    return _parse(table, no_holiday=no_holiday, json_rows=True, bounds=bounds)


# Upsert


_UPSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _insert_statement(session: Session) -> Any:
    """INSERT that tolerates a concurrent import of the same keys (upsert on SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect in _UPSERTS:
        statement = _UPSERTS[dialect](_TABLE)
        return statement.on_conflict_do_update(
            index_elements=["store", "dept", "week"],
            set_={
                "weekly_sales": statement.excluded.weekly_sales,
                "is_holiday": statement.excluded.is_holiday,
                "lineage": statement.excluded.lineage,
            },
        )
    return insert(_TABLE)


def upsert_actuals(
    session: Session, frame: pd.DataFrame, *, model_name: str = Config.MODEL_NAME
) -> ImportResult:
    """Insert new keys, update changed ones, leave equal ones alone; the caller's session commits.

    Every row written is tagged with the data lineage of `model_name`'s production version: actuals
    are only scored against forecasts of models of the same data. A row re-imported while production
    is a model of other data is re-tagged (an update).
    """
    if frame.empty:
        return ImportResult(0, 0, 0, 0)
    lineage = production_lineage(session, model_name)
    stores = sorted({int(s) for s in frame["store"]})
    first, last = min(frame["week"]), max(frame["week"])
    existing = pd.DataFrame(
        session.execute(
            select(
                _TABLE.c.store,
                _TABLE.c.dept,
                _TABLE.c.week,
                _TABLE.c.weekly_sales,
                _TABLE.c.is_holiday,
                _TABLE.c.lineage,
            ).where(and_(_TABLE.c.store.in_(stores), _TABLE.c.week >= first, _TABLE.c.week <= last))
        ).all(),
        columns=["store", "dept", "week", "old_sales", "old_holiday", "old_lineage"],
    )
    merged = frame.merge(existing, on=["store", "dept", "week"], how="left", indicator=True)
    new = merged[merged["_merge"] == "left_only"]
    known = merged[merged["_merge"] == "both"]
    changed = known[
        ~np.isclose(known["weekly_sales"], known["old_sales"].astype("float64"), rtol=0, atol=1e-9)
        | (known["is_holiday"].astype(bool) != known["old_holiday"].astype(bool))
        | (known["old_lineage"].fillna("").astype(str) != (lineage or ""))
    ]
    now = utcnow()
    if len(new):
        rows = [
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
        ]
        session.execute(_insert_statement(session), rows)
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
    result = ImportResult(len(frame), len(new), len(changed), len(known) - len(changed))
    log.info("actuals: %s", result.to_dict())
    return result


def import_csv(
    session: Session,
    raw: bytes | str,
    name: str = CSV_NAME,
    *,
    model_name: str = Config.MODEL_NAME,
    bounds: Bounds | None = None,
) -> ImportResult:
    return upsert_actuals(session, parse_csv(raw, name, bounds), model_name=model_name)


def import_rows(session: Session, rows: Any, *, model_name: str = Config.MODEL_NAME) -> ImportResult:
    return upsert_actuals(session, parse_rows(rows), model_name=model_name)
