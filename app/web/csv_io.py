"""CSV in and out: Kaggle-style batch files (train.csv / test.csv columns) and prediction downloads.

Parsing only maps headers and blanks; the values are validated by the same PredictRequest schema as
the JSON API, so a CSV row and a JSON row fail in the same way with the same messages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.limits import InputRejected, csv_header
from app.web import context
from app.web.errors import ApiError, detail
from app.web.schemas import CSV_COLUMNS, CSV_NULLS, CSV_PASSTHROUGH, ROWS, PredictRequest

REQUIRED = ("store", "dept", "date")

PREDICTION_COLUMNS = (
    "store",
    "dept",
    "week",
    "horizon",
    "prediction",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "data_through",
    "cold_start",
    "assumed",
    "model_version",
    "prediction_id",
)


@dataclass
class ParsedBatch:
    """Rows as schema input dicts, each with its file line number (header = line 1)."""

    rows: list[dict[str, Any]]
    lines: list[int]
    columns: list[str]
    passthrough: list[dict[str, str]] = field(default_factory=list)


def _normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").lower().replace("_", "").replace(" ", "")


def _csv_reason(error: csv.Error) -> str:
    """The csv module's complaint in the file's terms."""
    text = str(error)
    if "field larger than field limit" in text:
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    return text


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), falling back to Latin-1 so that any byte string parses."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_csv(text: str, max_rows: int) -> ParsedBatch:
    """Rows of a CSV with a header: 400 for a file that is not a usable CSV, 413 for too many rows.

    Row-level problems are left to validate_rows (422), so every bad row can be listed at once.
    """
    if "\x00" in text:
        raise ApiError(400, "the file is not a text CSV", [detail("file", "binary content (NUL bytes)")])
    try:
        csv_header(text, _normalise)  # bounded before anything else is read
    except InputRejected as refused:  # as ApiError: the pages catch the web layer's error type
        raise ApiError(refused.status, refused.message, refused.details) from None
    # Bare CR line endings (as in Kaggle's stores.csv) are normalised by splitlines.
    reader = csv.reader(io.StringIO("\n".join(text.splitlines())))
    try:
        header = next(reader)
    except StopIteration:
        raise ApiError(400, "the CSV file is empty", [detail("file", "no header line")]) from None
    except csv.Error as error:
        raise ApiError(400, "the CSV file cannot be read", [detail("file", str(error))]) from None
    mapping: list[tuple[int, str, bool]] = []  # (column index, field, is_passthrough)
    errors = []
    seen: set[str] = set()
    for index, name in enumerate(header):
        key = _normalise(name)
        if key in CSV_COLUMNS:
            target, passthrough = CSV_COLUMNS[key], False
        elif key in CSV_PASSTHROUGH:
            target, passthrough = CSV_PASSTHROUGH[key], True
        elif key == "":
            continue
        else:
            errors.append(detail(name.strip() or f"column {index + 1}", "unknown column"))
            continue
        if target in seen:
            errors.append(detail(target, "duplicate column"))
            continue
        seen.add(target)
        mapping.append((index, target, passthrough))
    for required in REQUIRED:
        if required not in seen:
            errors.append(detail(required, "missing column"))
    if errors:
        expected = (
            "Store, Dept, Date and optionally IsHoliday, Temperature, Fuel_Price, MarkDown1-5, CPI, ..."
        )
        raise ApiError(400, f"the CSV header is not usable: expected {expected}", errors)

    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    passthrough: list[dict[str, str]] = []
    try:
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise ApiError(
                    413,
                    f"too many rows: at most {max_rows} rows per batch",
                    [detail("rows", f"the limit is {max_rows} rows; split the file")],
                )
            row: dict[str, Any] = {}
            extra: dict[str, str] = {}
            for index, target, is_passthrough in mapping:
                cell = record[index].strip() if index < len(record) else ""
                if is_passthrough:
                    extra[target] = cell
                elif cell.lower() not in CSV_NULLS:
                    row[target] = cell
            rows.append(row)
            lines.append(reader.line_num)
            passthrough.append(extra)
    except csv.Error as error:
        raise ApiError(
            400,
            "the CSV file cannot be read",
            [detail("file", f"line {reader.line_num}: {_csv_reason(error)}")],
        ) from None
    if not rows:
        raise ApiError(400, "the CSV file has no data rows", [detail("rows", "no rows after the header")])
    return ParsedBatch(rows=rows, lines=lines, columns=[m[1] for m in mapping], passthrough=passthrough)


def validate_rows(
    rows: list[Any], lines: list[int] | None = None
) -> tuple[list[PredictRequest], list[dict[str, Any]]]:
    """All rows through the one schema; every error with its row index (and CSV line)."""
    try:
        return ROWS.validate_python(rows), []
    except ValidationError as error:
        errors = []
        for e in error.errors(include_url=False):
            loc = e["loc"]
            if not loc or not isinstance(loc[0], int):
                errors.append(detail("rows", e["msg"]))
                continue
            index = loc[0]
            name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
            message = (
                "unknown field"
                if e["type"] == "extra_forbidden"
                else str(e["msg"]).removeprefix("Value error, ")
            )
            item = detail(f"rows[{index}]{name}", message, row=index)
            if lines is not None:
                item["line"] = lines[index]
            errors.append(item)
        return [], errors


def validate_batch(
    rows: list[Any], lines: list[int] | None = None
) -> tuple[list[PredictRequest], list[dict[str, Any]]]:
    """Every problem of every row in one pass: the schema's, then the served model's (unknown store,
    week out of range) for the rows the schema accepts, in row order. Valid rows only without errors."""
    valid, errors = validate_rows(rows, lines)
    if errors:
        bad = {e.get("row") for e in errors}
        indexes = [i for i in range(len(rows)) if i not in bad]
        accepted = [PredictRequest.model_validate(rows[i]) for i in indexes]
    else:
        indexes, accepted = list(range(len(rows))), valid
    errors = errors + context.check_rows(accepted, lines, indexes)
    errors.sort(key=lambda e: e.get("row", -1))  # stable: a row's schema problems before the model's
    return ([] if errors else valid), errors


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise_cell(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula, quoted with a leading apostrophe (OWASP's advice for
    CSV injection); numbers, negative ones included, stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _is_number(value):
        return "'" + value
    return value


def predictions_csv(
    predictions: Iterable[Mapping[str, Any]],
    extra: list[dict[str, str]] | None = None,
    columns: Sequence[str] = PREDICTION_COLUMNS,
) -> str:
    """Predictions (their API dicts) as CSV, with any passthrough columns (Weekly_Sales, Id) first."""
    out = io.StringIO()
    predictions = list(predictions)
    extra_columns = list(extra[0]) if extra else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*extra_columns, *columns])
    for i, item in enumerate(predictions):
        values = []
        for column in columns:
            value = item.get(column, "")
            if column == "assumed" and isinstance(value, Mapping):
                value = ";".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, float):
                value = f"{value:.2f}"
            values.append(value)
        cells = [*(extra[i].get(c, "") for c in extra_columns), *values] if extra else values
        writer.writerow([neutralise_cell(cell) for cell in cells])
    return out.getvalue()
