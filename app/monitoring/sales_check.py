"""One check of actual sales for every path that brings them in: the CLI import, the API's JSON and
CSV, the page's upload and replay.

A file is read whole and every problem is named at once, by row (or line) and field: malformed
cells, stores and departments the served model's data does not know, weeks outside its calendar,
implausible sales (returns are real, a hundredfold week is not) and rows given twice. Stored weeks
are not read here: actuals.py decides what a row does to the table.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar, inputs
from app.forecasting import data as loader
from app.forecasting.calendar import is_holiday_week
from app.forecasting.panel import Panel
from app.limits import MAX_DETAILS, InputRejected, cap_details, csv_header, more_problems

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
MAX_ERRORS = MAX_DETAILS  # problems listed per answer; the rest are counted


@dataclass
class ActualsError(ValueError):
    """Input that cannot be imported; `errors` are {"field", "line", "message"} dicts, in line order."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    status: int = 400  # 400: the file cannot be read (not CSV, not UTF-8, its header); 422: rows refused

    def __str__(self) -> str:
        return "; ".join(
            e["message"] if not e.get("field") else f"{e['field']}: {e['message']}" for e in self.errors
        )


def upload_table(
    raw: bytes,
    name: str,
    header: Sequence[str] = HEADER,
    numeric: Sequence[str] = NUMERIC,
    error: type[ActualsError] = ActualsError,
) -> inputs.Table:
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
        frame = inputs.read_csv(
            raw,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError as exc:  # the reason without pandas' own words ("C error")
        reason = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        line = re.search(r"in line (\d+)", reason)
        raise fail("", int(line.group(1)) if line else None, f"malformed CSV: {reason}") from exc
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
    if frame.empty:  # a week's feed that arrived without its rows is a broken feed, not "0 imported"
        raise fail("", 2, "no data rows after the header")
    return inputs.Table(name, _loader_frame(frame, header, numeric), lines, int(blank.sum()))


def _loader_frame(
    frame: pd.DataFrame, header: Sequence[str] = HEADER, numeric: Sequence[str] = NUMERIC
) -> pd.DataFrame:
    """Text columns as the loader holds them: NA tokens as NaN, numbers as text, the rest categorical."""
    out = pd.DataFrame(index=frame.index)
    for column in header:
        text = frame[column].fillna("").astype(str).str.strip()
        text = text.where(~text.str.lower().isin(inputs.NA_TOKENS))
        out[column] = text if column in numeric else text.astype("category")
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _table_from_rows(rows: Sequence[Any]) -> tuple[inputs.Table, np.ndarray]:
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
    return inputs.Table("rows", frame, np.arange(1, len(frame) + 1), 0), np.array(no_holiday, dtype=bool)


def json_field(column: str | None) -> str:
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
    """What a plausible week of actual sales is, judged against the served model's data.

    Stores and departments that data knows; weeks from its first (`first_week`) to `last_week` (the
    current week, and the last week of the features table when a model is served); weekly sales whose
    size is at most `multiple` times the series' largest week so far, or times a typical series' largest
    when the series is new or small (a -99,999,999 typo or a pasted total is refused, a holiday spike or
    a week of returns is not). Without a model only the calendar and finiteness are checked.
    """

    last_week: dt.date
    last_week_rule: str
    multiple: float
    series_max: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))  # by (store, dept)
    typical_max: float = 0.0
    first_week: dt.date | None = None
    stores: np.ndarray | None = None  # sorted store numbers; None: not checked
    departments: np.ndarray | None = None  # sorted department numbers; None: not checked
    known_from: str = "the production model's data"
    data: Panel | None = None  # the sales the served model was trained on: a week there changes by correction


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
    return Bounds(
        last,
        rule,
        multiple,
        series_max,
        typical,
        first_week=calendar.week_date(model.panel.first_week)[0].date(),
        stores=np.unique(np.asarray(model.covariates.stores, dtype="int64")),
        departments=np.unique(np.asarray(model.panel.dept, dtype="int64")),
        known_from=f"the data of production model {model.version}",
        data=model.panel,
    )


def calendar_bounds(today: dt.date | None = None) -> Bounds:
    """The bounds without a served model: weeks up to the current one, any finite sales."""
    return bounds_for(None, today or dt.date.today(), 0.0)


COLUMN_ORDER = {column: rank for rank, column in enumerate(HEADER)}  # a row's problems, left to right


class _Problems:
    """Every problem of a table in one pass: each rule lists its first rows and counts the rest."""

    def __init__(self, table: inputs.Table, json_rows: bool) -> None:
        self.table, self.json_rows = table, json_rows
        self.found: list[tuple[int, int, str, str]] = []  # (row position, rule order, column, message)
        self.total = 0

    def add(self, column: str, mask: np.ndarray, message: Any) -> None:
        """Rows where `mask` holds break one rule; `message(i)` says how row i does."""
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        self.total += len(positions)
        for i in positions[:MAX_ERRORS]:
            self.found.append((int(i), len(self.found), column, message(int(i))))

    def field(self, i: int, column: str) -> str:
        if not self.json_rows:
            return column
        name = "/".join(json_field(c) for c in column.split("/"))
        return f"rows[{int(self.table.lines[i]) - 1}].{name}"

    def error(self) -> ActualsError | None:
        if not self.total:
            return None
        self.found.sort(key=lambda f: (f[0], COLUMN_ORDER.get(f[2], len(COLUMN_ORDER)), f[1]))
        listed = self.found[:MAX_ERRORS]
        errors: list[dict[str, Any]] = [
            {"field": self.field(i, column), "line": int(self.table.lines[i]), "message": message}
            for i, _, column, message in listed
        ]
        rest = self.total - len(listed)
        if rest:
            errors.append(more_problems(rest, line=None))
        return ActualsError(errors, status=422)


def _cell(table: inputs.Table, column: str, i: int) -> str:
    return inputs.shown(table.frame[column].iat[i])


def _whole_numbers(table: inputs.Table, column: str, problems: _Problems) -> np.ndarray:
    """Positive whole numbers, NaN where a row's value is not one (and a problem says why)."""
    text = table.frame[column]
    missing = text.isna().to_numpy()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    not_number = ~missing & ~np.isfinite(values)
    finite = np.isfinite(values)
    fraction = finite & (values != np.round(np.where(finite, values, 0.0)))
    out_of_range = finite & ~fraction & ((values < 1) | (values > inputs.MAX_INT))
    problems.add(column, missing, lambda i: "missing value")
    problems.add(column, not_number, lambda i: f"not a number: {_cell(table, column, i)}")
    problems.add(column, fraction, lambda i: f"not a whole number: {_cell(table, column, i)}")
    problems.add(
        column,
        out_of_range,
        lambda i: f"must be a positive whole number, got {_cell(table, column, i)}",
    )
    return np.where(missing | not_number | fraction | out_of_range, np.nan, values)


def _known(
    values: np.ndarray, known: np.ndarray | None, column: str, noun: str, bounds: Bounds, problems: _Problems
) -> None:
    if known is None or not len(known):
        return
    valid = np.isfinite(values)
    unknown = valid & ~np.isin(np.where(valid, values, 0).astype("int64"), known)
    shown = f"{len(known)} {noun}s, numbered {known.min()} to {known.max()}"
    problems.add(
        column,
        unknown,
        lambda i: f"{noun} {int(values[i])} is not in {bounds.known_from} ({shown})",
    )


def _weeks(table: inputs.Table, bounds: Bounds, problems: _Problems) -> np.ndarray:
    """The week-ending Fridays (datetime64[ns], NaT where a row's date is refused)."""
    column = "Date"
    series = table.frame[column]
    categories, codes = series.cat.categories.astype(str).str.strip(), series.cat.codes.to_numpy()
    parsed = pd.to_datetime(categories, format="%Y-%m-%d", errors="coerce")
    present = codes >= 0

    def rows(per_category: np.ndarray) -> np.ndarray:
        return present & np.append(np.asarray(per_category, dtype=bool), False)[codes]

    def text(i: int) -> str:
        return str(categories[codes[i]])

    valid = ~parsed.isna()
    weekday = np.where(valid, parsed.day_of_week.fillna(-1), -1).astype("int64")
    in_range = valid & (parsed >= inputs.FIRST_DATE) & (parsed <= inputs.LAST_DATE)
    friday = in_range & (weekday == 4)
    day = parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    early = friday & (day < np.datetime64(bounds.first_week)) if bounds.first_week else np.zeros_like(friday)
    late = friday & (day > np.datetime64(bounds.last_week))
    problems.add(column, ~present, lambda i: "missing date")
    problems.add(
        column,
        rows(~valid),
        lambda i: f"not a date (expected YYYY-MM-DD): {_cell(table, column, i)}",
    )
    problems.add(
        column,
        rows(valid & ~in_range),
        lambda i: f"{text(i)} is outside {inputs.FIRST_DATE.date()} to {inputs.LAST_DATE.date()}",
    )
    problems.add(
        column,
        rows(in_range & ~friday),
        lambda i: f"{text(i)} is a {inputs.WEEKDAYS[weekday[codes[i]]]}, not a Friday (weeks end on Friday)",
    )
    problems.add(
        column, rows(early), lambda i: f"{text(i)} is before {bounds.first_week}, the data's first week"
    )
    problems.add(column, rows(late), lambda i: f"{text(i)} is {bounds.last_week_rule}")
    accepted = np.append(friday & ~early & ~late, False)[codes]
    weeks = np.append(parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))[codes]
    return np.where(accepted, weeks, np.datetime64("NaT", "ns"))


def _sales(
    table: inputs.Table, store: np.ndarray, dept: np.ndarray, bounds: Bounds, problems: _Problems
) -> np.ndarray:
    column = "Weekly_Sales"
    text = table.frame[column]
    missing = text.isna().to_numpy()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    not_number = ~missing & np.isnan(values)
    infinite = np.isinf(values)
    problems.add(column, missing, lambda i: "missing value")
    problems.add(column, not_number, lambda i: f"not a number: {_cell(table, column, i)}")
    problems.add(column, infinite, lambda i: f"not a finite number: {_cell(table, column, i)}")
    if bounds.multiple > 0 and bounds.typical_max > 0:
        known = np.isfinite(store) & np.isfinite(dept)
        index = pd.MultiIndex.from_arrays(
            [np.where(known, store, 0).astype("int64"), np.where(known, dept, 0).astype("int64")]
        )
        peak = np.maximum(bounds.series_max.reindex(index).fillna(0.0).to_numpy(), bounds.typical_max)
        large = np.isfinite(values) & (np.abs(values) > bounds.multiple * peak)
        problems.add(
            column,
            large,
            lambda i: (
                f"{values[i]:,.2f} is more than {bounds.multiple:g} times the series' largest week "
                f"({peak[i]:,.2f}); a typo or a total?"
            ),
        )
    return values


def _holidays(table: inputs.Table, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """Each row's holiday flag, and which rows left it empty or NA: those take the calendar's, as a JSON
    row without one does (the one NA rule of inputs.py)."""
    column = "IsHoliday"
    series = table.frame[column]
    upper, codes = series.cat.categories.astype(str).str.strip().str.upper(), series.cat.codes.to_numpy()
    unstated = np.append(upper == "", True)[codes]  # code -1: an NA token, read as missing
    known = np.append(upper.isin(["TRUE", "FALSE"]), False)[codes] | unstated
    problems.add(column, ~known, lambda i: f"expected TRUE or FALSE, got {_cell(table, column, i)}")
    return np.append(upper == "TRUE", False)[codes], unstated


def _duplicates(
    table: inputs.Table, store: np.ndarray, dept: np.ndarray, week: np.ndarray, problems: _Problems
) -> None:
    valid = np.isfinite(store) & np.isfinite(dept) & ~np.isnat(week)
    keys = pd.DataFrame({"store": store, "dept": dept, "week": week, "position": np.arange(len(store))})[
        valid
    ]
    repeated = keys.duplicated(["store", "dept", "week"], keep="first").to_numpy()
    if not repeated.any():
        return
    first = keys.groupby(["store", "dept", "week"])["position"].transform("min").to_numpy()
    mask = np.zeros(len(store), dtype=bool)
    mask[keys["position"].to_numpy()[repeated]] = True
    first_of = np.zeros(len(store), dtype="int64")
    first_of[keys["position"].to_numpy()] = first

    def message(i: int) -> str:
        described = f"Store {int(store[i])}, Dept {int(dept[i])}, Date {str(week[i])[:10]}"
        line = int(table.lines[first_of[i]])
        first_at = f"rows[{line - 1}]" if problems.json_rows else f"line {line}"
        return f"duplicate row for {described} (first {'as' if problems.json_rows else 'on'} {first_at})"

    problems.add("Store/Dept/Date", mask, message)


def check_table(
    table: inputs.Table,
    bounds: Bounds,
    *,
    no_holiday: np.ndarray | None = None,
    json_rows: bool = False,
) -> pd.DataFrame:
    """The one check of actual sales, whatever path they came by: every problem of every row in one pass.

    Malformed values, stores and departments the served model's data does not know, weeks outside its
    calendar, implausible sales and rows repeated in the input; raises ActualsError naming each by row
    and field (status 422). Stored weeks are upsert_actuals' check.
    """
    problems = _Problems(table, json_rows)
    store = _whole_numbers(table, "Store", problems)
    dept = _whole_numbers(table, "Dept", problems)
    week = _weeks(table, bounds, problems)
    sales = _sales(table, store, dept, bounds, problems)
    holiday, unstated = _holidays(table, problems)
    _known(store, bounds.stores, "Store", "store", bounds, problems)
    _known(dept, bounds.departments, "Dept", "department", bounds, problems)
    _duplicates(table, store, dept, week, problems)
    error = problems.error()
    if error is not None:
        raise error
    weeks = pd.to_datetime(week)
    holiday = holiday.copy()
    no_holiday = unstated if no_holiday is None else (no_holiday | unstated)
    if no_holiday.any():
        holiday[no_holiday] = np.asarray(is_holiday_week(weeks[no_holiday]), dtype=bool)
    frame = pd.DataFrame(
        {
            "store": store.astype("int64"),
            "dept": dept.astype("int64"),
            "week": weeks.date,
            "weekly_sales": sales.astype("float64"),
            "is_holiday": np.asarray(holiday, dtype=bool),
            "line": np.asarray(table.lines, dtype="int64"),
            # what the served model's data holds for the week (NaN: none): changed only by correction
            "data_sales": (
                bounds.data.values_at(store, dept, calendar.week_index(weeks))
                if bounds.data is not None
                else np.full(len(store), np.nan)
            ),
        }
    )
    frame.attrs["json_rows"] = json_rows
    return frame


def parse_csv(raw: bytes | str, name: str = CSV_NAME, bounds: Bounds | None = None) -> pd.DataFrame:
    """A train.csv-format file as a frame of store, dept, week (date), weekly_sales, is_holiday, line.

    `bounds` come from the served model (bounds_for); without them only the calendar is known.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return check_table(upload_table(raw, name), bounds or calendar_bounds())


def parse_rows(rows: Any, bounds: Bounds | None = None) -> pd.DataFrame:
    """JSON rows (a list, or {"rows": [...]}) as the same frame; errors name rows[i].field."""
    if isinstance(rows, Mapping) and "rows" in rows:
        rows = rows["rows"]
    if not isinstance(rows, list) or not rows:
        raise ActualsError([{"field": "rows", "line": None, "message": "expected a non-empty list of rows"}])
    table, no_holiday = _table_from_rows(rows)
    return check_table(table, bounds or calendar_bounds(), no_holiday=no_holiday, json_rows=True)
