"""Reading input, for every entry point alike: the Kaggle files the core loads, the actual sales and
covariates monitoring imports, and the rows the API, the forms and a batch CSV send.

One set of words for a missing value, one catalogue of covariates (their planner's label, unit and
plausible range), one horizon cap, and the column parsers whose errors name the file, line and column.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Weeks ahead a model forecasts from its newest week of data: the API, the forms, a forecast run and a
# backtest all stop here (the intervals are calibrated up to it).
MAX_HORIZON = 52
# The quantile levels a caller may ask of a forecast (any quantile is read from calibrated intervals).
QUANTILE_RANGE = (0.01, 0.99)


@dataclass(frozen=True)
class Covariate:
    """One weekly covariate of a store: its field name, its Kaggle column, what a planner reads for it
    (label and unit), and the range a value must lie in (it rejects typos, not unusual weeks)."""

    name: str
    column: str
    label: str
    unit: str
    low: float
    high: float
    description: str


COVARIATES: dict[str, Covariate] = {
    c.name: c
    for c in (
        Covariate(
            "temperature",
            "Temperature",
            "Temperature",
            "°F",
            -80.0,
            150.0,
            "average temperature in the store's region",
        ),
        Covariate(
            "fuel_price", "Fuel_Price", "Fuel price", "$/gal", 0.0, 20.0, "cost of fuel in the store's region"
        ),
        *(
            Covariate(
                f"markdown{i}",
                f"MarkDown{i}",
                f"Markdown {i}",
                "$",
                -100_000.0,
                10_000_000.0,
                f"promotional markdown {i}",
            )
            for i in range(1, 6)
        ),
        Covariate("cpi", "CPI", "Consumer price index", "index", 0.0, 1000.0, "consumer price index"),
        Covariate("unemployment", "Unemployment", "Unemployment rate", "%", 0.0, 100.0, "unemployment rate"),
    )
}

# What a missing value may be written as, compared stripped and case-insensitively, in every file and
# row: train.csv and features.csv, actual sales, a batch CSV.
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
# The same words as pandas matches them (exactly), for the fast CSV reader.
NA_VALUES = sorted(
    {variant for token in NA_TOKENS for variant in (token, token.upper(), token.title(), "NaN")}
)


def is_na(text: str) -> bool:
    """Whether a cell's text means "no value"."""
    return text.strip().lower() in NA_TOKENS


class DataError(ValueError):
    """Input data that cannot be used as it is; names the file, line and column."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, column: str | None = None
    ) -> None:
        self.file, self.line, self.column = file, line, column
        where = ", ".join(
            part
            for part in (
                file,
                f"line {line}" if line is not None else None,
                f"column {column}" if column is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FRIDAY = 4
MAX_INT = 2**31 - 1
# Weeks a sales or features file may name: beyond them the nanosecond timestamps the pipeline uses
# overflow (9999-12-31 became 1816-03-29); plausibility against the data is the importer's to judge.
FIRST_DATE = pd.Timestamp("1900-01-05")
LAST_DATE = pd.Timestamp("2199-12-27")


@dataclass
class Table:
    """One CSV as parsed columns, with the 1-based file line number of every row.

    Numeric columns are float64 (or text when the fast parse failed, so the bad value can be located);
    all other columns are categoricals, so each distinct text (143 dates, 2 booleans) is parsed once.
    """

    name: str
    frame: pd.DataFrame
    lines: np.ndarray
    blank_lines: int

    def fail(self, position: int, column: str | None, message: str) -> DataError:
        return DataError(message, file=self.name, line=int(self.lines[position]), column=column)


def read_csv(raw: bytes, **options: object) -> pd.DataFrame:
    """pandas.read_csv that never takes the first column for an index: with every row one field longer
    than the header, pandas would, and each cell would land one column left (the store read as the
    department) without a word. Such a file is refused as any row of the wrong length is."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(io.BytesIO(raw), index_col=False, **options)
    if any(
        issubclass(w.category, pd.errors.ParserWarning) and "Length of header" in str(w.message)
        for w in caught
    ):
        raise pd.errors.ParserError(_longer_row(raw))
    return frame


def _longer_row(raw: bytes) -> str:
    """The first row with more fields than the header, in pandas' own words for a row of the wrong length."""
    rows = csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace")))
    expected = len(next(rows, []))
    for line, row in enumerate(rows, start=2):
        if len(row) > expected:
            return f"Expected {expected} fields in line {line}, saw {len(row)}"
    return f"Expected {expected} fields in every line"


def read_table(
    directory: Path, name: str, header: list[str], numeric: list[str], *, allow_empty: bool = False
) -> Table:
    """Read a CSV whatever its line endings (Kaggle's stores.csv uses bare CR), keeping line numbers."""
    path = directory / name
    if not path.is_file():
        raise DataError(f"file not found in {directory}", file=name)
    raw = path.read_bytes()
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not raw.strip():
        raise DataError("file is empty (expected a header line)", file=name, line=1)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {raw[exc.start]:#04x})", file=name, line=line) from exc
    options = {"keep_default_na": False, "na_values": NA_VALUES, "encoding": "utf-8-sig"}
    try:
        names = read_csv(raw, nrows=0, **options).columns
        original = {str(column).strip(): column for column in names}
        missing = [column for column in header if column not in original]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(missing)}; expected header {','.join(header)}",
                file=name,
                line=1,
                column=missing[0],
            )
        dtypes = {original[c]: ("float64" if c in numeric else "category") for c in header}

        # skip_blank_lines=False keeps one row per physical line, so row i is on line i + 2.
        def read(dtype: dict[str, str]) -> pd.DataFrame:
            return read_csv(raw, skip_blank_lines=False, dtype=dtype, **options)

        try:
            frame = read(dtypes)
        except (ValueError, TypeError, OverflowError) as exc:
            if isinstance(exc, pd.errors.ParserError):
                raise
            # A number did not parse: read those columns as text so the bad row can be found and named.
            frame = read({**dtypes, **{original[c]: "str" for c in numeric}})
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = (int(group) for group in match.groups())
            raise DataError(
                f"malformed CSV: expected {expected} fields, saw {saw}", file=name, line=line
            ) from exc
        raise DataError(f"malformed CSV: {exc}", file=name) from exc
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"could not read the file: {exc}", file=name) from exc
    frame = frame.rename(columns={v: k for k, v in original.items()})[header]
    lines = np.arange(2, len(frame) + 2)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    if frame.empty and not allow_empty:
        raise DataError("no data rows after the header", file=name, line=2)
    return Table(name, frame, lines, int(blank.sum()))


def shown(value: object, limit: int = 40) -> str:
    """A cell quoted in a message, cut to `limit` characters so an error never echoes a huge input."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + f" (cut; {len(text):,} characters)"
    return repr(text)


def first_index(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def parse_float(table: Table, column: str, *, required: bool) -> tuple[np.ndarray, int]:
    """Floats with NaN where missing; returns the values and how many were missing."""
    series = table.frame[column]
    missing = series.isna().to_numpy()
    if series.dtype == "float64":
        values = series.to_numpy()
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    bad = ~missing & ~np.isfinite(values)
    if bad.any():
        i = first_index(bad)
        raise table.fail(i, column, f"not a number: {shown(series.iat[i])}")
    if required and missing.any():
        raise table.fail(first_index(missing), column, "missing value")
    return values, int(missing.sum())


def parse_int(table: Table, column: str) -> np.ndarray:
    """Positive whole numbers (store and department numbers, store sizes)."""
    values, _ = parse_float(table, column, required=True)
    bad = values != np.round(values)
    if bad.any():
        i = first_index(bad)
        raise table.fail(i, column, f"not a whole number: {shown(table.frame[column].iat[i])}")
    out_of_range = (values < 1) | (values > MAX_INT)
    if out_of_range.any():
        i = first_index(out_of_range)
        raise table.fail(
            i, column, f"expected a positive whole number, got {shown(table.frame[column].iat[i])}"
        )
    return values.astype("int64")


def category_codes(table: Table, column: str) -> tuple[pd.Index, np.ndarray]:
    """The distinct stripped texts of a categorical column and each row's code (-1 where missing)."""
    series = table.frame[column]
    return series.cat.categories.astype(str).str.strip(), series.cat.codes.to_numpy()


def cell_text(table: Table, column: str, position: int) -> str:
    value = table.frame[column].iat[position]
    return "" if pd.isna(value) else str(value)


def parse_friday(table: Table, column: str = "Date") -> np.ndarray:
    """ISO dates (YYYY-MM-DD) that are Fridays: every week in the data ends on a Friday."""
    categories, codes = category_codes(table, column)
    if (codes < 0).any():
        raise table.fail(first_index(codes < 0), column, "missing date")
    parsed = pd.to_datetime(categories, format="%Y-%m-%d", errors="coerce")
    bad_categories = parsed.isna()
    if bad_categories.any():
        i = first_index(bad_categories[codes])
        raise table.fail(i, column, f"not a date (expected YYYY-MM-DD): {shown(cell_text(table, column, i))}")
    outside = ((parsed < FIRST_DATE) | (parsed > LAST_DATE))[codes]
    if outside.any():
        i = first_index(outside)
        raise table.fail(
            i,
            column,
            f"{cell_text(table, column, i).strip()} is outside {FIRST_DATE.date()} to {LAST_DATE.date()}",
        )
    weekday = parsed.day_of_week.to_numpy()[codes]
    if (weekday != FRIDAY).any():
        i = first_index(weekday != FRIDAY)
        raise table.fail(
            i,
            column,
            f"{cell_text(table, column, i).strip()} is a {WEEKDAYS[weekday[i]]}, not a Friday"
            " (weeks end on Friday)",
        )
    return parsed.to_numpy(dtype="datetime64[ns]")[codes]


def parse_bool(table: Table, column: str = "IsHoliday") -> np.ndarray:
    categories, codes = category_codes(table, column)
    upper = categories.str.upper()
    known = np.append(upper.isin(["TRUE", "FALSE"]), False)  # code -1 (missing) indexes the last slot
    if not known[codes].all():
        i = first_index(~known[codes])
        raise table.fail(i, column, f"expected TRUE or FALSE, got {shown(cell_text(table, column, i))}")
    return np.append(upper == "TRUE", False)[codes]


def parse_text(table: Table, column: str) -> np.ndarray:
    categories, codes = category_codes(table, column)
    if (codes < 0).any():
        raise table.fail(first_index(codes < 0), column, "missing value")
    return categories.to_numpy(dtype=object)[codes]


def check_unique(table: Table, keys: pd.DataFrame, columns: list[str]) -> None:
    duplicated = keys.duplicated(keep="first").to_numpy()
    if not duplicated.any():
        return
    i = first_index(duplicated)
    same = np.ones(len(keys), dtype=bool)
    for key in keys.columns:
        same &= (keys[key] == keys[key].iat[i]).to_numpy()
    first_line = int(table.lines[first_index(same)])
    shown = [keys[key].iat[i] for key in keys.columns]
    shown = [value.date() if isinstance(value, pd.Timestamp) else value for value in shown]
    described = ", ".join(f"{column} {value}" for column, value in zip(columns, shown, strict=True))
    raise table.fail(i, "/".join(columns), f"duplicate row for {described} (first on line {first_line})")
