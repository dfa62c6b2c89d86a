"""Load the Walmart CSVs into a Dataset, or fail with a DataError that says where and why."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.forecasting.inputs import (
    COVARIATES,
    DataError,
    Table,
    check_unique,
    first_index,
    parse_bool,
    parse_float,
    parse_friday,
    parse_int,
    parse_text,
    read_table,
)

logger = logging.getLogger(__name__)

SALES_COLUMNS = ["store", "dept", "date", "weekly_sales", "is_holiday"]
COVARIATE_COLUMNS = list(COVARIATES)
FEATURE_COLUMNS = ["store", "date", *COVARIATE_COLUMNS, "is_holiday"]
STORE_COLUMNS = ["store", "type", "size"]


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
KAGGLE_COVARIATES = {name: covariate.column for name, covariate in COVARIATES.items()}
TRAIN_HEADER = ["Store", "Dept", "Date", "Weekly_Sales", "IsHoliday"]
FEATURES_HEADER = ["Store", "Date", *KAGGLE_COVARIATES.values(), "IsHoliday"]
STORES_HEADER = ["Store", "Type", "Size"]
TEST_HEADER = ["Store", "Dept", "Date", "IsHoliday"]
STORE_TYPES = ("A", "B", "C")


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


def _check_known_stores(table: Table, store: np.ndarray, known: np.ndarray) -> None:
    unknown = ~np.isin(store, known)
    if unknown.any():
        i = first_index(unknown)
        raise table.fail(i, "Store", f"store {store[i]} is not in {STORES_FILE}")


def _read_stores(directory: Path) -> tuple[pd.DataFrame, Table]:
    table = read_table(directory, STORES_FILE, STORES_HEADER, ["Store", "Size"])
    store = parse_int(table, "Store")
    kind = parse_text(table, "Type")
    bad_type = ~np.isin(kind, STORE_TYPES)
    if bad_type.any():
        i = first_index(bad_type)
        raise table.fail(i, "Type", f"store type must be one of A, B, C, got {kind[i]!r}")
    size = parse_int(table, "Size")
    if (size <= 0).any():
        i = first_index(size <= 0)
        raise table.fail(i, "Size", f"store size must be positive, got {size[i]}")
    check_unique(table, pd.DataFrame({"store": store}), ["Store"])
    stores = pd.DataFrame({"store": store, "type": pd.Series(kind, dtype=str), "size": size})
    return stores.sort_values("store", kind="stable").reset_index(drop=True), table


def _read_features(directory: Path, known_stores: np.ndarray) -> tuple[pd.DataFrame, Table, dict[str, int]]:
    numeric = ["Store", *KAGGLE_COVARIATES.values()]
    table = read_table(directory, FEATURES_FILE, FEATURES_HEADER, numeric, allow_empty=True)
    store = parse_int(table, "Store")
    date = parse_friday(table)
    columns: dict[str, np.ndarray] = {"store": store, "date": date}
    missing: dict[str, int] = {}
    for name, kaggle in KAGGLE_COVARIATES.items():
        columns[name], missing[kaggle] = parse_float(table, kaggle, required=False)
    columns["is_holiday"] = parse_bool(table)
    check_unique(table, pd.DataFrame({"store": store, "date": date}), ["Store", "Date"])
    _check_known_stores(table, store, known_stores)
    features = pd.DataFrame(columns, columns=FEATURE_COLUMNS)
    features = _sorted(features, ["store", "date"])
    return features, table, missing


def _read_sales(directory: Path, known_stores: np.ndarray) -> tuple[pd.DataFrame, Table]:
    table = read_table(directory, TRAIN_FILE, TRAIN_HEADER, ["Store", "Dept", "Weekly_Sales"])
    store = parse_int(table, "Store")
    dept = parse_int(table, "Dept")
    date = parse_friday(table)
    sales, _ = parse_float(table, "Weekly_Sales", required=True)
    holiday = parse_bool(table)
    check_unique(table, pd.DataFrame({"store": store, "dept": dept, "date": date}), ["Store", "Dept", "Date"])
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
    table = read_table(directory, TEST_FILE, TEST_HEADER, ["Store", "Dept"])
    store = parse_int(table, "Store")
    dept = parse_int(table, "Dept")
    date = parse_friday(table)
    holiday = parse_bool(table)
    check_unique(table, pd.DataFrame({"store": store, "dept": dept, "date": date}), ["Store", "Dept", "Date"])
    if stores is not None:
        _check_known_stores(table, store, stores["store"].to_numpy())
    return pd.DataFrame({"store": store, "dept": dept, "date": date, "is_holiday": holiday})
