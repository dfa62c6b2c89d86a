"""Load the Walmart CSVs into a Dataset, or fail with a DataError that says where and why."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SALES_COLUMNS = ["store", "dept", "date", "weekly_sales", "is_holiday"]
COVARIATE_COLUMNS = [
    "temperature",
    "fuel_price",
    "markdown1",
    "markdown2",
    "markdown3",
    "markdown4",
    "markdown5",
    "cpi",
    "unemployment",
]
FEATURE_COLUMNS = ["store", "date", *COVARIATE_COLUMNS, "is_holiday"]
STORE_COLUMNS = ["store", "type", "size"]


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


@dataclass(frozen=True)
class Dataset:
    """The three Walmart tables, cleaned and typed, with snake_case column names.

    sales:    store:int, dept:int, date:datetime64[ns] (a Friday, the week's end),
              weekly_sales:float, is_holiday:bool; sorted by store, dept, date; keys unique.
    features: store:int, date, temperature, fuel_price, markdown1..5, cpi, unemployment
              (floats, NaN where unknown), is_holiday:bool; may run past the last sales week.
    stores:   store:int, type:str (A/B/C), size:int.
    report:   what loading coerced, counted (for example {"features.csv MarkDown1 NA": 270889}).
    """

    sales: pd.DataFrame
    features: pd.DataFrame
    stores: pd.DataFrame
    source: str
    report: dict[str, int] = field(default_factory=dict)

    @property
    def last_week(self) -> pd.Timestamp:
        return pd.Timestamp(self.sales["date"].max())

    def fingerprint(self) -> str:
        """SHA-256 of the cleaned tables: the same data gives the same fingerprint."""
        digest = hashlib.sha256()
        for frame in (self.sales, self.features, self.stores):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()

    def lineage(self) -> str:
        """The data's identity across weeks: its stores and covariates, not the sales that keep arriving.

        A model retrained on the same files plus ingested actuals keeps the lineage; a model of other
        files (the synthetic default against the real ones) has another, so actuals of one are never
        scored against forecasts of the other.
        """
        digest = hashlib.sha256()
        for frame in (self.features, self.stores):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:16]

    def through(self, last_date: str | pd.Timestamp) -> Dataset:
        """The same data with sales up to and including last_date (covariates kept whole)."""
        cutoff = pd.Timestamp(last_date)
        return Dataset(
            sales=self.sales[self.sales["date"] <= cutoff].reset_index(drop=True),
            features=self.features,
            stores=self.stores,
            source=f"{self.source} through {cutoff.date()}",
            report=self.report,
        )


# Loading: pandas' C parser reads numbers as float64 and everything else as categoricals (each distinct
# date or flag is then parsed once), so the real files load in well under a second. Checks are vectorised;
# the first offending row is located afterwards so the error can name its line. When a number does not
# parse, the file is read again with those columns as text to find it. Line numbers assume no quoted
# field spans lines (Kaggle's files have none).

TRAIN_FILE, FEATURES_FILE, STORES_FILE, TEST_FILE = "train.csv", "features.csv", "stores.csv", "test.csv"
KAGGLE_COVARIATES = {
    "temperature": "Temperature",
    "fuel_price": "Fuel_Price",
    "markdown1": "MarkDown1",
    "markdown2": "MarkDown2",
    "markdown3": "MarkDown3",
    "markdown4": "MarkDown4",
    "markdown5": "MarkDown5",
    "cpi": "CPI",
    "unemployment": "Unemployment",
}
TRAIN_HEADER = ["Store", "Dept", "Date", "Weekly_Sales", "IsHoliday"]
FEATURES_HEADER = ["Store", "Date", *KAGGLE_COVARIATES.values(), "IsHoliday"]
STORES_HEADER = ["Store", "Type", "Size"]
TEST_HEADER = ["Store", "Dept", "Date", "IsHoliday"]
STORE_TYPES = ("A", "B", "C")

_NA_TOKENS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL"]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_FRIDAY = 4
_MAX_INT = 2**31 - 1
# Weeks a sales or features file may name: beyond them the nanosecond timestamps the pipeline uses
# overflow (9999-12-31 became 1816-03-29); plausibility against the data is the importer's to judge.
_FIRST_DATE = pd.Timestamp("1900-01-05")
_LAST_DATE = pd.Timestamp("2199-12-27")


@dataclass
class _Table:
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


def _read_table(
    directory: Path, name: str, header: list[str], numeric: list[str], *, allow_empty: bool = False
) -> _Table:
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
    options = {"keep_default_na": False, "na_values": _NA_TOKENS, "encoding": "utf-8-sig"}
    try:
        names = pd.read_csv(io.BytesIO(raw), nrows=0, **options).columns
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
            return pd.read_csv(io.BytesIO(raw), skip_blank_lines=False, dtype=dtype, **options)

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
    return _Table(name, frame, lines, int(blank.sum()))


def _shown(value: object, limit: int = 40) -> str:
    """A cell quoted in a message, cut to `limit` characters so an error never echoes a huge input."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + f" (cut; {len(text):,} characters)"
    return repr(text)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _parse_float(table: _Table, column: str, *, required: bool) -> tuple[np.ndarray, int]:
    """Floats with NaN where missing; returns the values and how many were missing."""
    series = table.frame[column]
    missing = series.isna().to_numpy()
    if series.dtype == "float64":
        values = series.to_numpy()
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    bad = ~missing & ~np.isfinite(values)
    if bad.any():
        i = _first(bad)
        raise table.fail(i, column, f"not a number: {_shown(series.iat[i])}")
    if required and missing.any():
        raise table.fail(_first(missing), column, "missing value")
    return values, int(missing.sum())


def _parse_int(table: _Table, column: str) -> np.ndarray:
    """Positive whole numbers (store and department numbers, store sizes)."""
    values, _ = _parse_float(table, column, required=True)
    bad = values != np.round(values)
    if bad.any():
        i = _first(bad)
        raise table.fail(i, column, f"not a whole number: {_shown(table.frame[column].iat[i])}")
    out_of_range = (values < 1) | (values > _MAX_INT)
    if out_of_range.any():
        i = _first(out_of_range)
        raise table.fail(
            i, column, f"expected a positive whole number, got {_shown(table.frame[column].iat[i])}"
        )
    return values.astype("int64")


def _categories(table: _Table, column: str) -> tuple[pd.Index, np.ndarray]:
    """The distinct stripped texts of a categorical column and each row's code (-1 where missing)."""
    series = table.frame[column]
    return series.cat.categories.astype(str).str.strip(), series.cat.codes.to_numpy()


def _text(table: _Table, column: str, position: int) -> str:
    value = table.frame[column].iat[position]
    return "" if pd.isna(value) else str(value)


def _parse_friday(table: _Table, column: str = "Date") -> np.ndarray:
    """ISO dates (YYYY-MM-DD) that are Fridays: every week in the data ends on a Friday."""
    categories, codes = _categories(table, column)
    if (codes < 0).any():
        raise table.fail(_first(codes < 0), column, "missing date")
    parsed = pd.to_datetime(categories, format="%Y-%m-%d", errors="coerce")
    bad_categories = parsed.isna()
    if bad_categories.any():
        i = _first(bad_categories[codes])
        raise table.fail(i, column, f"not a date (expected YYYY-MM-DD): {_shown(_text(table, column, i))}")
    outside = ((parsed < _FIRST_DATE) | (parsed > _LAST_DATE))[codes]
    if outside.any():
        i = _first(outside)
        raise table.fail(
            i,
            column,
            f"{_text(table, column, i).strip()} is outside {_FIRST_DATE.date()} to {_LAST_DATE.date()}",
        )
    weekday = parsed.day_of_week.to_numpy()[codes]
    if (weekday != _FRIDAY).any():
        i = _first(weekday != _FRIDAY)
        raise table.fail(
            i,
            column,
            f"{_text(table, column, i).strip()} is a {_WEEKDAYS[weekday[i]]}, not a Friday"
            " (weeks end on Friday)",
        )
    return parsed.to_numpy(dtype="datetime64[ns]")[codes]


def _parse_bool(table: _Table, column: str = "IsHoliday") -> np.ndarray:
    categories, codes = _categories(table, column)
    upper = categories.str.upper()
    known = np.append(upper.isin(["TRUE", "FALSE"]), False)  # code -1 (missing) indexes the last slot
    if not known[codes].all():
        i = _first(~known[codes])
        raise table.fail(i, column, f"expected TRUE or FALSE, got {_shown(_text(table, column, i))}")
    return np.append(upper == "TRUE", False)[codes]


def _parse_text(table: _Table, column: str) -> np.ndarray:
    categories, codes = _categories(table, column)
    if (codes < 0).any():
        raise table.fail(_first(codes < 0), column, "missing value")
    return categories.to_numpy(dtype=object)[codes]


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sort by keys, skipping the sort when the file is already in order (Kaggle's are)."""
    ascending = np.zeros(max(len(frame) - 1, 0), dtype=bool)
    tied = np.ones_like(ascending)
    for key in keys:
        values = frame[key].to_numpy()
        ascending |= tied & (values[1:] > values[:-1])
        tied &= values[1:] == values[:-1]
    if ascending.all():
        return frame
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _check_unique(table: _Table, keys: pd.DataFrame, columns: list[str]) -> None:
    duplicated = keys.duplicated(keep="first").to_numpy()
    if not duplicated.any():
        return
    i = _first(duplicated)
    same = np.ones(len(keys), dtype=bool)
    for key in keys.columns:
        same &= (keys[key] == keys[key].iat[i]).to_numpy()
    first_line = int(table.lines[_first(same)])
    shown = [keys[key].iat[i] for key in keys.columns]
    shown = [value.date() if isinstance(value, pd.Timestamp) else value for value in shown]
    described = ", ".join(f"{column} {value}" for column, value in zip(columns, shown, strict=True))
    raise table.fail(i, "/".join(columns), f"duplicate row for {described} (first on line {first_line})")


def _check_known_stores(table: _Table, store: np.ndarray, known: np.ndarray) -> None:
    unknown = ~np.isin(store, known)
    if unknown.any():
        i = _first(unknown)
        raise table.fail(i, "Store", f"store {store[i]} is not in {STORES_FILE}")


def _read_stores(directory: Path) -> tuple[pd.DataFrame, _Table]:
    table = _read_table(directory, STORES_FILE, STORES_HEADER, ["Store", "Size"])
    store = _parse_int(table, "Store")
    kind = _parse_text(table, "Type")
    bad_type = ~np.isin(kind, STORE_TYPES)
    if bad_type.any():
        i = _first(bad_type)
        raise table.fail(i, "Type", f"store type must be one of A, B, C, got {kind[i]!r}")
    size = _parse_int(table, "Size")
    if (size <= 0).any():
        i = _first(size <= 0)
        raise table.fail(i, "Size", f"store size must be positive, got {size[i]}")
    _check_unique(table, pd.DataFrame({"store": store}), ["Store"])
    stores = pd.DataFrame({"store": store, "type": pd.Series(kind, dtype=str), "size": size})
    return stores.sort_values("store", kind="stable").reset_index(drop=True), table


def _read_features(directory: Path, known_stores: np.ndarray) -> tuple[pd.DataFrame, _Table, dict[str, int]]:
    numeric = ["Store", *KAGGLE_COVARIATES.values()]
    table = _read_table(directory, FEATURES_FILE, FEATURES_HEADER, numeric, allow_empty=True)
    store = _parse_int(table, "Store")
    date = _parse_friday(table)
    columns: dict[str, np.ndarray] = {"store": store, "date": date}
    missing: dict[str, int] = {}
    for name, kaggle in KAGGLE_COVARIATES.items():
        columns[name], missing[kaggle] = _parse_float(table, kaggle, required=False)
    columns["is_holiday"] = _parse_bool(table)
    _check_unique(table, pd.DataFrame({"store": store, "date": date}), ["Store", "Date"])
    _check_known_stores(table, store, known_stores)
    features = pd.DataFrame(columns, columns=FEATURE_COLUMNS)
    features = _sorted(features, ["store", "date"])
    return features, table, missing


def _read_sales(directory: Path, known_stores: np.ndarray) -> tuple[pd.DataFrame, _Table]:
    table = _read_table(directory, TRAIN_FILE, TRAIN_HEADER, ["Store", "Dept", "Weekly_Sales"])
    store = _parse_int(table, "Store")
    dept = _parse_int(table, "Dept")
    date = _parse_friday(table)
    sales, _ = _parse_float(table, "Weekly_Sales", required=True)
    holiday = _parse_bool(table)
    _check_unique(
        table, pd.DataFrame({"store": store, "dept": dept, "date": date}), ["Store", "Dept", "Date"]
    )
    _check_known_stores(table, store, known_stores)
    frame = pd.DataFrame(
        {"store": store, "dept": dept, "date": date, "weekly_sales": sales, "is_holiday": holiday},
        columns=SALES_COLUMNS,
    )
    return _sorted(frame, ["store", "dept", "date"]), table


def _week_keys(store: pd.Series, date: pd.Series) -> np.ndarray:
    days = date.to_numpy(dtype="datetime64[D]").astype("int64")
    return store.to_numpy(dtype="int64") * 1_000_000 + days


def summarise(sales: pd.DataFrame, features: pd.DataFrame, stores: pd.DataFrame) -> dict[str, int]:
    """Counts of what the cleaned tables contain that a modeller should know about.

    Shared by the loader and the synthetic generator so that a round trip through CSV gives the same report.
    """
    report: dict[str, int] = {
        f"{TRAIN_FILE} rows": len(sales),
        f"{FEATURES_FILE} rows": len(features),
        f"{STORES_FILE} rows": len(stores),
    }
    for name, kaggle in KAGGLE_COVARIATES.items():
        report[f"{FEATURES_FILE} {kaggle} NA"] = int(features[name].isna().sum())
    report[f"{TRAIN_FILE} negative Weekly_Sales"] = int((sales["weekly_sales"] < 0).sum())
    if len(sales):
        spans = sales.groupby(["store", "dept"], sort=False)["date"].agg(["min", "max", "size"])
        expected = (spans["max"] - spans["min"]).dt.days.to_numpy() // 7 + 1
        gaps = expected - spans["size"].to_numpy()
        all_weeks = (sales["date"].max() - sales["date"].min()).days // 7 + 1
        report[f"{TRAIN_FILE} series"] = len(spans)
        # Missing any week of the whole sales range (late starts and early ends count too).
        report[f"{TRAIN_FILE} series with missing weeks"] = int((spans["size"].to_numpy() < all_weeks).sum())
        report[f"{TRAIN_FILE} series with gaps inside their span"] = int((gaps > 0).sum())
        report[f"{TRAIN_FILE} missing weeks inside series spans"] = int(gaps.sum())
    else:
        for key in ("series", "series with missing weeks", "series with gaps inside their span"):
            report[f"{TRAIN_FILE} {key}"] = 0
        report[f"{TRAIN_FILE} missing weeks inside series spans"] = 0
    sales_keys = _week_keys(sales["store"], sales["date"])
    feature_keys = _week_keys(features["store"], features["date"])
    order = np.argsort(feature_keys, kind="stable")
    feature_keys = feature_keys[order]
    if len(feature_keys):
        position = np.minimum(np.searchsorted(feature_keys, sales_keys), len(feature_keys) - 1)
        covered = feature_keys[position] == sales_keys
        flags = features["is_holiday"].to_numpy()[order][position]
        differs = covered & (flags != sales["is_holiday"].to_numpy())
    else:
        covered = differs = np.zeros(len(sales), dtype=bool)
    report[f"{TRAIN_FILE} rows without a {FEATURES_FILE} row"] = int((~covered).sum())
    report[f"{TRAIN_FILE} IsHoliday differs from {FEATURES_FILE}"] = int(differs.sum())
    return report


def _resolve_directory(data_dir: str | Path) -> Path:
    directory = Path(data_dir).expanduser().resolve()
    if not directory.is_dir():
        raise DataError(f"data directory not found: {directory}")
    return directory


def load_dataset(data_dir: str | Path) -> Dataset:
    """Read train.csv, features.csv and stores.csv from data_dir as Kaggle ships them.

    Nothing is dropped: negative sales, gaps and missing covariates are kept and counted in `report`;
    anything that cannot be used raises DataError naming file, line and column.
    """
    started = time.perf_counter()
    directory = _resolve_directory(data_dir)
    stores, stores_table = _read_stores(directory)
    known = stores["store"].to_numpy()
    features, features_table, _ = _read_features(directory, known)
    sales, sales_table = _read_sales(directory, known)
    report = summarise(sales, features, stores)
    for table in (sales_table, features_table, stores_table):
        if table.blank_lines:
            report[f"{table.name} blank lines"] = table.blank_lines
    logger.info(
        "loaded %s: %d sales rows, %d features rows, %d stores in %.2fs",
        directory,
        len(sales),
        len(features),
        len(stores),
        time.perf_counter() - started,
    )
    return Dataset(sales=sales, features=features, stores=stores, source=str(directory), report=report)


def load_test_rows(data_dir: str | Path, stores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read Kaggle's test.csv (the weeks to forecast for a submission): store, dept, date, is_holiday.

    Validated like train.csv; when `stores` is given (or stores.csv is present beside it) an unknown
    store is a DataError too. Rows keep the file's order so a submission can follow it.
    """
    directory = _resolve_directory(data_dir)
    if stores is None and (directory / STORES_FILE).is_file():
        stores, _ = _read_stores(directory)
    table = _read_table(directory, TEST_FILE, TEST_HEADER, ["Store", "Dept"])
    store = _parse_int(table, "Store")
    dept = _parse_int(table, "Dept")
    date = _parse_friday(table)
    holiday = _parse_bool(table)
    _check_unique(
        table, pd.DataFrame({"store": store, "dept": dept, "date": date}), ["Store", "Dept", "Date"]
    )
    if stores is not None:
        _check_known_stores(table, store, stores["store"].to_numpy())
    return pd.DataFrame({"store": store, "dept": dept, "date": date, "is_holiday": holiday})
