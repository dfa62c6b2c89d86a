"""CSV in and out: Kaggle-style batch files (train.csv / test.csv columns) and prediction downloads.

Parsing only maps headers and blanks; the values are validated by the same PredictRequest schema as
the JSON API, so a CSV row and a JSON row fail in the same way with the same messages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from app.forecasting.inputs import is_na
from app.forecasting.prediction import BANDS, quantile_name
from app.limits import MAX_BATCH_DETAILS, InputRejected, cap_details, csv_header
from app.web import context
from app.web.api.errors import ApiError, detail
from app.web.schemas import CSV_COLUMNS, CSV_PASSTHROUGH, ROWS, PredictionOut, PredictRequest

REQUIRED = ("store", "dept", "date")

PREDICTION_COLUMNS = (
    "store",
    "dept",
    "week",
    "horizon",
    *BANDS,
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
    longer: list[dict[str, Any]] = []  # rows with more cells than the header: which column was meant?
    try:
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue
            if any(cell.strip() for cell in record[len(header) :]):
                expected = f"expected {len(header)} fields (the header's), saw {len(record)}"
                longer.append(detail("file", f"line {reader.line_num}: {expected}"))
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
                elif not is_na(cell):
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
    if longer:
        raise ApiError(400, "malformed CSV: rows longer than the header", cap_details(longer))
    if not rows:
        raise ApiError(400, "the CSV file has no data rows", [detail("rows", "no rows after the header")])
    return ParsedBatch(rows=rows, lines=lines, columns=[m[1] for m in mapping], passthrough=passthrough)


VALIDATION_CHUNK = 5_000  # rows per schema call: only one chunk's pydantic errors are held at once


class Problems:
    """A batch's problems in one pass: up to `limit` details listed, the rest counted, bad rows tallied."""

    def __init__(self, limit: int = MAX_BATCH_DETAILS) -> None:
        self.limit = limit
        self.details: list[dict[str, Any]] = []
        self.more = 0
        self.rows: set[int] = set()

    def add(self, item: dict[str, Any]) -> None:
        if isinstance(item.get("row"), int):
            self.rows.add(item["row"])
        if len(self.details) < self.limit:
            self.details.append(item)
        else:
            self.more += 1

    def listed(self) -> list[dict[str, Any]]:
        """In row order (a row's schema problems before the model's), then the count of the rest."""
        ordered = sorted(self.details, key=lambda e: e.get("row", -1))
        if self.more:
            ordered.append(detail("details", f"and {self.more:,} more problems not listed", count=self.more))
        return ordered


def _schema_problem(e: Any, start: int, lines: list[int] | None) -> dict[str, Any]:
    loc = e["loc"]
    if not loc or not isinstance(loc[0], int):
        return detail("rows", e["msg"])
    index = start + loc[0]
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
    message = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        message = "unknown field"
    item = detail(f"rows[{index}]{name}", message, row=index)
    if lines is not None:
        item["line"] = lines[index]
    return item


def _schema_check(
    rows: list[Any], lines: list[int] | None, problems: Problems
) -> list[PredictRequest | None]:
    """Every row through the one schema, VALIDATION_CHUNK rows at a time; None in place of a bad row."""
    checked: list[PredictRequest | None] = []
    for start in range(0, len(rows), VALIDATION_CHUNK):
        chunk = rows[start : start + VALIDATION_CHUNK]
        bad: set[Any] = set()
        try:
            checked.extend(ROWS.validate_python(chunk))
            continue
        except ValidationError as error:
            for e in error.errors(include_url=False):
                item = _schema_problem(e, start, lines)
                bad.add(item.get("row"))
                problems.add(item)
        for offset, raw in enumerate(chunk):
            checked.append(None if start + offset in bad else PredictRequest.model_validate(raw))
    return checked


def validate_rows(
    rows: list[Any], lines: list[int] | None = None
) -> tuple[list[PredictRequest], list[dict[str, Any]]]:
    """All rows through the one schema; every error with its row index (and CSV line)."""
    problems = Problems()
    checked = _schema_check(rows, lines, problems)
    if problems.details:
        return [], problems.listed()
    return [row for row in checked if row is not None], []


@dataclass
class CheckedBatch:
    """A batch after every check: the rows when all are valid, else the problems and how many rows."""

    valid: list[PredictRequest]
    errors: list[dict[str, Any]]
    bad_rows: int


def validate_batch(rows: list[Any], lines: list[int] | None = None) -> CheckedBatch:
    """Every problem of every row in one pass: the schema's, then the served model's (unknown store,
    week out of range) for the rows the schema accepts, in row order. Valid rows only without errors.

    Up to MAX_BATCH_DETAILS problems are listed (one per row of a full batch), the rest counted.
    """
    problems = Problems()
    checked = _schema_check(rows, lines, problems)
    indexes = [i for i, row in enumerate(checked) if row is not None]
    accepted = [checked[i] for i in indexes] if problems.details else checked
    for item in context.check_rows(accepted, lines, indexes):  # type: ignore[arg-type]
        problems.add(item)
    if problems.details:
        return CheckedBatch([], problems.listed(), len(problems.rows))
    return CheckedBatch(checked, [], 0)  # type: ignore[arg-type]


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
    return csv_header_line(extra, columns) + _csv_rows(predictions, extra, 0, columns)


def csv_header_line(
    extra: list[dict[str, str]] | None = None, columns: Sequence[str] = PREDICTION_COLUMNS
) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([*(list(extra[0]) if extra else []), *columns])
    return out.getvalue()


def quantile_columns(quantiles: Sequence[float] | None) -> tuple[str, ...]:
    """The prediction CSV's columns: PREDICTION_COLUMNS, then a q0.1-style column per asked quantile
    (sorted and distinct, as the core answers them)."""
    levels = sorted({round(float(q), 4) for q in quantiles or ()})
    return (*PREDICTION_COLUMNS, *(quantile_name(q) for q in levels))


def csv_part(
    extra: list[dict[str, str]] | None = None, columns: Sequence[str] = PREDICTION_COLUMNS
) -> Callable[[list[dict[str, Any]]], str]:
    """A batch writer (predictions.predict_batch): each chunk's rows as CSV text, with the passthrough
    columns of the same file lines."""
    done = [0]

    def write(chunk: list[dict[str, Any]]) -> str:
        text = _csv_rows(chunk, extra, done[0], columns)
        done[0] += len(chunk)
        return text

    return write


def csv_answer(
    parts: list[str], extra: list[dict[str, str]] | None = None, columns: Sequence[str] = PREDICTION_COLUMNS
) -> list[str]:
    """A whole CSV answer from a batch's parts (sent as they are: no second copy is joined)."""
    return [csv_header_line(extra, columns), *parts]


# The answer model writes each chunk: what a batch answer holds is what BatchResponse documents.
_PREDICTIONS_OUT = TypeAdapter(list[PredictionOut])


def json_part(chunk: list[dict[str, Any]]) -> bytes:
    """A batch writer: a chunk of predictions as the inside of a JSON array (PredictionOut's fields)."""
    return _PREDICTIONS_OUT.dump_json(_PREDICTIONS_OUT.validate_python(chunk), exclude_unset=True)[1:-1]


def json_answer(head: dict[str, Any], key: str, parts: list[bytes]) -> list[bytes]:
    """`head` plus `key`: the array of every part, as the pieces of one JSON object (no joined copy)."""
    pieces = [orjson.dumps(head)[:-1] + b',"' + key.encode() + b'":[']
    for part in parts:
        if part:
            if len(pieces) > 1:
                pieces.append(b",")
            pieces.append(part)
    pieces.append(b"]}")
    return pieces


def _csv_rows(
    predictions: Iterable[Mapping[str, Any]],
    extra: list[dict[str, str]] | None,
    offset: int,
    columns: Sequence[str] = PREDICTION_COLUMNS,
) -> str:
    out = io.StringIO()
    extra_columns = list(extra[0]) if extra else []
    writer = csv.writer(out, lineterminator="\n")
    for i, item in enumerate(predictions, start=offset):
        values = []
        quantiles = item.get("quantiles") or {}
        for column in columns:
            value = item.get(column, quantiles.get(column, ""))
            if column == "assumed" and isinstance(value, Mapping):
                value = ";".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, float):
                value = f"{value:.2f}"
            values.append(value)
        cells = [*(extra[i].get(c, "") for c in extra_columns), *values] if extra else values
        writer.writerow([neutralise_cell(cell) for cell in cells])
    return out.getvalue()
