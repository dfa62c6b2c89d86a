"""The Kaggle CSV loader: the real files, a CSV round trip of synthetic data, and every DataError case."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.forecasting.data import (
    FEATURE_COLUMNS,
    SALES_COLUMNS,
    STORE_COLUMNS,
    DataError,
    Dataset,
    load_dataset,
    load_test_rows,
)
from app.forecasting.synthetic import generate_dataset, load_or_generate, write_kaggle_csvs
from tests.helpers.data import REAL_DATA_DIR

# helpers


def _write_small(directory: Path, seed: int = 3) -> Dataset:
    dataset = generate_dataset(seed=seed, n_stores=3, n_depts=4)
    write_kaggle_csvs(dataset, directory)
    return dataset


def _lines(path: Path) -> tuple[list[str], str]:
    """The file's lines and its line terminator (stores.csv uses a bare CR, like Kaggle's)."""
    text = path.read_bytes().decode()
    terminator = "\r\n" if "\r\n" in text else "\r" if "\r" in text else "\n"
    return text.split(terminator)[:-1] if text.endswith(terminator) else text.split(terminator), terminator


def _save(path: Path, lines: list[str], terminator: str) -> None:
    path.write_bytes((terminator.join(lines) + terminator).encode())


def _set_field(path: Path, line: int, column: str, value: str) -> None:
    """Replace one field of the 1-based line `line` (the header is line 1)."""
    lines, terminator = _lines(path)
    index = lines[0].split(",").index(column)
    fields = lines[line - 1].split(",")
    fields[index] = value
    lines[line - 1] = ",".join(fields)
    _save(path, lines, terminator)


def _expect_error(directory: Path, file: str, line: int | None, column: str | None, *words: str) -> DataError:
    loader = load_test_rows if file == "test.csv" else load_dataset
    with pytest.raises(DataError) as caught:
        loader(directory)
    error = caught.value
    message = str(error)
    assert (error.file, error.line, error.column) == (file, line, column), message
    assert message.startswith(file), message
    if line is not None:
        assert f"line {line}" in message, message
    if column is not None:
        assert f"column {column}" in message, message
    for word in words:
        assert word in message, message
    return error


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    _write_small(tmp_path)
    return tmp_path


# real files


@pytest.mark.real_data
def test_real_files_load_with_expected_counts_and_types() -> None:
    started = time.perf_counter()
    dataset = load_dataset(REAL_DATA_DIR)
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, f"loading took {elapsed:.2f}s"

    assert len(dataset.sales) == 421_570
    assert len(dataset.features) == 8_190
    assert len(dataset.stores) == 45
    assert dataset.source == str(REAL_DATA_DIR.resolve())
    assert list(dataset.sales.columns) == SALES_COLUMNS
    assert list(dataset.features.columns) == FEATURE_COLUMNS
    assert list(dataset.stores.columns) == STORE_COLUMNS
    assert dataset.sales.dtypes.astype(str).to_dict() == {
        "store": "int64",
        "dept": "int64",
        "date": "datetime64[ns]",
        "weekly_sales": "float64",
        "is_holiday": "bool",
    }
    assert dataset.features["is_holiday"].dtype == bool
    assert (dataset.features[FEATURE_COLUMNS[2:-1]].dtypes == "float64").all()
    assert dataset.sales["date"].min() == pd.Timestamp("2010-02-05")
    assert dataset.last_week == pd.Timestamp("2012-10-26")
    assert dataset.features["date"].max() == pd.Timestamp("2013-07-26")
    assert (dataset.sales["date"].dt.day_of_week == 4).all()
    keys = dataset.sales[["store", "dept", "date"]]
    assert not keys.duplicated().any()
    assert keys.equals(keys.sort_values(["store", "dept", "date"]).reset_index(drop=True))

    report = dataset.report
    assert report["train.csv rows"] == 421_570
    assert report["train.csv negative Weekly_Sales"] == 1_285
    assert (dataset.sales["weekly_sales"] < 0).sum() == 1_285  # kept, not dropped
    assert report["train.csv series"] == 3_331
    assert report["train.csv series with missing weeks"] == 671
    assert report["features.csv MarkDown1 NA"] == 4_158
    assert report["features.csv CPI NA"] == 585
    assert report["features.csv Unemployment NA"] == 585
    assert dataset.features.loc[dataset.features["date"] < "2011-11-11", "markdown1"].isna().all()


@pytest.mark.real_data
def test_real_stores_csv_has_bare_cr_line_endings_and_loads() -> None:
    raw = (REAL_DATA_DIR / "stores.csv").read_bytes()
    assert b"\r" in raw and b"\n" not in raw
    stores = load_dataset(REAL_DATA_DIR).stores
    assert stores["store"].tolist() == list(range(1, 46))
    assert set(stores["type"]) == {"A", "B", "C"}
    assert stores.loc[0, "size"] == 151_315
    assert stores.loc[44, ["type", "size"]].tolist() == ["B", 118_221]


@pytest.mark.real_data
def test_real_test_csv_rows() -> None:
    rows = load_test_rows(REAL_DATA_DIR)
    assert len(rows) == 115_064
    assert list(rows.columns) == ["store", "dept", "date", "is_holiday"]
    assert rows["date"].min() == pd.Timestamp("2012-11-02")
    assert rows["date"].max() == pd.Timestamp("2013-07-26")
    train_pairs = set(
        map(tuple, load_dataset(REAL_DATA_DIR).sales[["store", "dept"]].drop_duplicates().to_numpy())
    )
    test_pairs = set(map(tuple, rows[["store", "dept"]].drop_duplicates().to_numpy()))
    assert len(test_pairs - train_pairs) == 11


@pytest.mark.real_data
def test_real_holiday_flags_follow_the_calendar_rule() -> None:
    from app.forecasting.calendar import flagged_holiday_weeks

    features = load_dataset(REAL_DATA_DIR).features
    flagged = set(features.loc[features["is_holiday"], "date"])
    expected = {day for year in range(2010, 2014) for day in flagged_holiday_weeks(year).values()}
    in_range = {day for day in expected if features["date"].min() <= day <= features["date"].max()}
    assert flagged == in_range


# round trips


def test_synthetic_round_trip_through_kaggle_csvs(tmp_path: Path) -> None:
    dataset = generate_dataset(seed=5, n_stores=4, n_depts=6)
    paths = write_kaggle_csvs(dataset, tmp_path)
    assert set(paths) == {"train.csv", "features.csv", "stores.csv", "test.csv"}
    assert (tmp_path / "train.csv").read_text().splitlines()[0] == "Store,Dept,Date,Weekly_Sales,IsHoliday"
    assert b"\n" not in (tmp_path / "stores.csv").read_bytes()  # written with bare CR, like Kaggle
    features_text = (tmp_path / "features.csv").read_text()
    assert ",NA," in features_text and ",TRUE" in features_text and ",FALSE" in features_text

    loaded = load_dataset(tmp_path)
    pd.testing.assert_frame_equal(loaded.sales, dataset.sales)
    pd.testing.assert_frame_equal(loaded.features, dataset.features)
    pd.testing.assert_frame_equal(loaded.stores, dataset.stores)
    assert loaded.fingerprint() == dataset.fingerprint()
    assert loaded.report == dataset.report
    assert loaded.source == str(tmp_path.resolve())

    rows = load_test_rows(tmp_path)
    future = dataset.features.loc[dataset.features["date"] > dataset.last_week, "date"].nunique()
    assert len(rows) == future * len(dataset.sales[["store", "dept"]].drop_duplicates())
    assert (rows["date"] > dataset.last_week).all()


@pytest.mark.parametrize("terminator", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_any_line_ending_loads_the_same(tmp_path: Path, terminator: str) -> None:
    dataset = _write_small(tmp_path)
    for name in ("train.csv", "features.csv", "stores.csv"):
        lines, _ = _lines(tmp_path / name)
        _save(tmp_path / name, lines, terminator)
    loaded = load_dataset(tmp_path)
    assert loaded.fingerprint() == dataset.fingerprint()


def test_rows_in_any_order_load_sorted(tmp_path: Path) -> None:
    dataset = _write_small(tmp_path)
    for name in ("train.csv", "features.csv", "stores.csv"):
        lines, terminator = _lines(tmp_path / name)
        body = lines[1:]
        order = np.random.default_rng(0).permutation(len(body))
        _save(tmp_path / name, [lines[0], *(body[i] for i in order)], terminator)
    loaded = load_dataset(tmp_path)
    assert loaded.fingerprint() == dataset.fingerprint()
    assert loaded.sales.index.equals(pd.RangeIndex(len(dataset.sales)))


def test_error_line_numbers_are_right_with_cr_endings(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "stores.csv", 3, "Size", "big")
    _expect_error(kaggle_dir, "stores.csv", 3, "Size", "not a number", "big")


def test_blank_lines_are_counted_and_keep_line_numbers(kaggle_dir: Path) -> None:
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    _save(path, [*lines[:5], "", *lines[5:]], terminator)
    assert load_dataset(kaggle_dir).report["train.csv blank lines"] == 1
    _set_field(path, 9, "Weekly_Sales", "lots")  # line 9 is below the blank line 6
    _expect_error(kaggle_dir, "train.csv", 9, "Weekly_Sales", "lots")


def test_surrounding_spaces_and_lowercase_booleans_are_accepted(kaggle_dir: Path) -> None:
    expected = load_dataset(kaggle_dir)
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    lines[1] = ",".join(f" {field} " for field in lines[1].split(","))
    lines[2] = lines[2].replace("FALSE", "false").replace("TRUE", "true")
    _save(path, lines, terminator)
    assert load_dataset(kaggle_dir).fingerprint() == expected.fingerprint()


def test_extra_columns_bom_and_header_spaces_are_tolerated(kaggle_dir: Path) -> None:
    expected = load_dataset(kaggle_dir)
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    lines = [lines[0].replace("Dept,", " Dept ,") + ",Comment", *(line + ",x" for line in lines[1:])]
    path.write_bytes(b"\xef\xbb\xbf" + (terminator.join(lines) + terminator).encode())
    assert load_dataset(kaggle_dir).fingerprint() == expected.fingerprint()


def test_header_only_features_is_allowed_and_counted(kaggle_dir: Path) -> None:
    path = kaggle_dir / "features.csv"
    lines, terminator = _lines(path)
    _save(path, lines[:1], terminator)
    dataset = load_dataset(kaggle_dir)
    assert dataset.features.empty and list(dataset.features.columns) == FEATURE_COLUMNS
    assert dataset.report["train.csv rows without a features.csv row"] == len(dataset.sales)


def test_holiday_flag_disagreement_is_counted(kaggle_dir: Path) -> None:
    assert load_dataset(kaggle_dir).report["train.csv IsHoliday differs from features.csv"] == 0
    path = kaggle_dir / "train.csv"
    flag = _lines(path)[0][1].split(",")[-1]
    _set_field(path, 2, "IsHoliday", "FALSE" if flag == "TRUE" else "TRUE")
    assert load_dataset(kaggle_dir).report["train.csv IsHoliday differs from features.csv"] == 1


def test_load_or_generate_without_directory_is_synthetic() -> None:
    assert load_or_generate(None, seed=1).source.startswith("synthetic")


# errors


@pytest.mark.parametrize("name", ["train.csv", "features.csv", "stores.csv"])
def test_missing_file(kaggle_dir: Path, name: str) -> None:
    (kaggle_dir / name).unlink()
    _expect_error(kaggle_dir, name, None, None, "file not found")


def test_missing_test_file(kaggle_dir: Path) -> None:
    (kaggle_dir / "test.csv").unlink()
    _expect_error(kaggle_dir, "test.csv", None, None, "file not found")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data directory not found"):
        load_dataset(tmp_path / "nowhere")


def test_empty_file(kaggle_dir: Path) -> None:
    (kaggle_dir / "features.csv").write_bytes(b"")
    _expect_error(kaggle_dir, "features.csv", 1, None, "empty")


@pytest.mark.parametrize(
    ("name", "column"),
    [("train.csv", "Weekly_Sales"), ("features.csv", "CPI"), ("stores.csv", "Type"), ("test.csv", "Dept")],
)
def test_missing_column(kaggle_dir: Path, name: str, column: str) -> None:
    path = kaggle_dir / name
    lines, terminator = _lines(path)
    lines[0] = lines[0].replace(column, "Something")
    _save(path, lines, terminator)
    _expect_error(kaggle_dir, name, 1, column, "missing column")


@pytest.mark.parametrize("name", ["train.csv", "features.csv", "test.csv"])
def test_unparseable_date(kaggle_dir: Path, name: str) -> None:
    _set_field(kaggle_dir / name, 7, "Date", "2010-13-05")
    _expect_error(kaggle_dir, name, 7, "Date", "not a date", "2010-13-05")


@pytest.mark.parametrize("name", ["train.csv", "features.csv", "test.csv"])
def test_date_that_is_not_a_friday(kaggle_dir: Path, name: str) -> None:
    _set_field(kaggle_dir / name, 4, "Date", "2010-02-06")
    _expect_error(kaggle_dir, name, 4, "Date", "2010-02-06 is a Saturday, not a Friday")


def test_missing_date(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "train.csv", 5, "Date", "")
    _expect_error(kaggle_dir, "train.csv", 5, "Date", "missing date")


@pytest.mark.parametrize(
    ("name", "column", "value"),
    [
        ("train.csv", "Weekly_Sales", "12.3.4"),
        ("train.csv", "Dept", "x1"),
        ("features.csv", "Temperature", "hot"),
        ("features.csv", "MarkDown3", "inf"),
        ("stores.csv", "Size", "big"),
        ("test.csv", "Store", "one"),
    ],
)
def test_unparseable_number(kaggle_dir: Path, name: str, column: str, value: str) -> None:
    _set_field(kaggle_dir / name, 3, column, value)
    _expect_error(kaggle_dir, name, 3, column, "not a number", value)


def test_store_that_is_not_a_whole_number(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "train.csv", 6, "Store", "1.5")
    _expect_error(kaggle_dir, "train.csv", 6, "Store", "not a whole number")


def test_missing_sales_value(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "train.csv", 8, "Weekly_Sales", "NA")
    _expect_error(kaggle_dir, "train.csv", 8, "Weekly_Sales", "missing value")


@pytest.mark.parametrize("name", ["train.csv", "features.csv", "test.csv"])
def test_unknown_holiday_value(kaggle_dir: Path, name: str) -> None:
    _set_field(kaggle_dir / name, 10, "IsHoliday", "yes")
    _expect_error(kaggle_dir, name, 10, "IsHoliday", "expected TRUE or FALSE", "yes")


@pytest.mark.parametrize(
    ("name", "column"),
    [("train.csv", "Store/Dept/Date"), ("features.csv", "Store/Date"), ("test.csv", "Store/Dept/Date")],
)
def test_duplicated_key(kaggle_dir: Path, name: str, column: str) -> None:
    path = kaggle_dir / name
    lines, terminator = _lines(path)
    _save(path, [*lines, lines[3]], terminator)
    _expect_error(kaggle_dir, name, len(lines) + 1, column, "duplicate row", "first on line 4")


def test_duplicated_store(kaggle_dir: Path) -> None:
    path = kaggle_dir / "stores.csv"
    lines, terminator = _lines(path)
    _save(path, [*lines, lines[1]], terminator)
    _expect_error(kaggle_dir, "stores.csv", len(lines) + 1, "Store", "duplicate row", "first on line 2")


@pytest.mark.parametrize("name", ["train.csv", "features.csv", "test.csv"])
def test_store_not_in_stores_csv(kaggle_dir: Path, name: str) -> None:
    _set_field(kaggle_dir / name, 12, "Store", "99")
    _expect_error(kaggle_dir, name, 12, "Store", "store 99 is not in stores.csv")


def test_unknown_store_type(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "stores.csv", 2, "Type", "D")
    _expect_error(kaggle_dir, "stores.csv", 2, "Type", "A, B, C")


def test_row_with_too_many_fields(kaggle_dir: Path) -> None:
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    lines[6] += ",extra"
    _save(path, lines, terminator)
    _expect_error(kaggle_dir, "train.csv", 7, None, "malformed CSV")


def test_every_row_one_field_longer_is_refused_not_read_a_column_left(kaggle_dir: Path) -> None:
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    _save(path, [lines[0], *(f"9,{line}" for line in lines[1:])], terminator)
    _expect_error(kaggle_dir, "train.csv", 2, None, "malformed CSV: expected 5 fields, saw 6")


def test_sales_without_features_rows_are_fine_and_counted(kaggle_dir: Path) -> None:
    path = kaggle_dir / "features.csv"
    lines, terminator = _lines(path)
    _save(path, [lines[0], *[line for line in lines[1:] if not line.startswith("1,2010-02")]], terminator)
    dataset = load_dataset(kaggle_dir)
    expected = int(((dataset.sales["store"] == 1) & (dataset.sales["date"] < "2010-03-01")).sum())
    assert expected > 0
    assert dataset.report["train.csv rows without a features.csv row"] == expected


def test_first_bad_row_is_reported_not_a_later_one(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "train.csv", 30, "Weekly_Sales", "bad2")
    _set_field(kaggle_dir / "train.csv", 20, "Weekly_Sales", "bad1")
    _expect_error(kaggle_dir, "train.csv", 20, "Weekly_Sales", "bad1")


def test_file_with_header_only(kaggle_dir: Path) -> None:
    path = kaggle_dir / "train.csv"
    lines, terminator = _lines(path)
    _save(path, lines[:1], terminator)
    _expect_error(kaggle_dir, "train.csv", 2, None, "no data rows")


def test_not_utf8(kaggle_dir: Path) -> None:
    path = kaggle_dir / "stores.csv"
    path.write_bytes(path.read_bytes() + b"9,\xe9,40000\r")
    _expect_error(kaggle_dir, "stores.csv", 5, None, "not UTF-8")


@pytest.mark.parametrize("value", ["0", "-3", "1e12"])
def test_store_number_out_of_range(kaggle_dir: Path, value: str) -> None:
    _set_field(kaggle_dir / "train.csv", 4, "Store", value)
    _expect_error(kaggle_dir, "train.csv", 4, "Store", "positive whole number")


def test_error_is_a_value_error_with_fields(kaggle_dir: Path) -> None:
    _set_field(kaggle_dir / "train.csv", 2, "IsHoliday", "maybe")
    error = _expect_error(kaggle_dir, "train.csv", 2, "IsHoliday")
    assert isinstance(error, ValueError)
    assert str(error) == "train.csv, line 2, column IsHoliday: expected TRUE or FALSE, got 'maybe'"
