"""Bounds on hostile input, checked before any pandas, pydantic or model work.

Why one module at the bottom of the stack: the web layer (JSON bodies, batch CSVs) and the services
below it (actual sales and covariate uploads, which the CLI reads too) must refuse the same shapes
with the same words, and no request may cost more than its size. Every refusal is an InputRejected
carrying an HTTP-style status and details that name the field and the rule, never Python internals;
the web layer renders it (app/web/errors.py), the CLI prints it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import Any

import orjson

MAX_DETAILS = 50  # problems listed in one error response; the rest are counted
# A batch answer lists a problem for every bad row of a full batch (MAX_BATCH_ROWS rows) and counts any
# beyond: a batch is fixed in one round, and the answer stays within a few MB.
MAX_BATCH_DETAILS = 100_000
MAX_CSV_COLUMNS = 64  # the widest file read (features.csv) has 12
MAX_HEADER_BYTES = 16 * 1024  # the header line of a CSV
MAX_JSON_DEPTH = 32  # the deepest body read ({"covariates": [{...}]}) is 3 levels


class InputRejected(ValueError):
    """Input refused before it was processed: status (400, 413, 422...), a message and field details
    (at most `limit` of them, then one that counts the rest)."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Iterable[dict[str, Any]] | None = None,
        limit: int = MAX_DETAILS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.limit = limit
        self.details = cap_details(details or [], limit)


def problem(field: str, message: str, **extra: Any) -> dict[str, Any]:
    """One detail: the field and the rule it breaks."""
    return {"field": field, "message": message, **extra}


def more_problems(rest: int, **extra: Any) -> dict[str, Any]:
    """The detail that counts the problems a capped answer does not list."""
    return problem("details", f"and {rest:,} more problems not listed", count=rest, **extra)


def cap_details(details: Iterable[dict[str, Any]], limit: int = MAX_DETAILS) -> list[dict[str, Any]]:
    """The first `limit` details, then one that counts the rest (so a response stays small)."""
    kept: list[dict[str, Any]] = []
    rest = 0
    for item in details:
        if len(kept) < limit:
            kept.append(item)
        elif item.get("field") == "details" and str(item.get("message", "")).startswith("and "):
            rest += int(item.get("count", 0))  # an earlier cap's summary: keep its count
        else:
            rest += 1
    if rest:
        kept.append(more_problems(rest))
    return kept


def _first_line(data: bytes | str) -> bytes | str:
    """The header line, read without scanning past MAX_HEADER_BYTES."""
    head = data[: MAX_HEADER_BYTES + 1]
    cut = len(head)
    for end in ("\n", "\r") if isinstance(head, str) else (b"\n", b"\r"):
        found = head.find(end)
        if found != -1:
            cut = min(cut, found)
    if cut > MAX_HEADER_BYTES:
        raise InputRejected(
            400,
            "the CSV header is not usable",
            [problem("header", f"the header line is longer than {MAX_HEADER_BYTES:,} bytes")],
        )
    return head[:cut]


def csv_header(data: bytes | str, normalise: Callable[[str], str] = str.strip) -> list[str]:
    """The header's column names, checked with the csv module before the file is parsed.

    Refused (400): a header line over MAX_HEADER_BYTES, more than MAX_CSV_COLUMNS columns, or a
    column name that appears twice (after `normalise`), which pandas would rename at great cost.
    """
    line = _first_line(data)
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.lstrip("\ufeff")
    try:
        names = next(csv.reader([line]), [])
    except csv.Error as error:
        raise InputRejected(
            400, "the CSV header is not usable", [problem("header", f"not a CSV line ({error})")]
        ) from None
    if len(names) > MAX_CSV_COLUMNS:
        raise InputRejected(
            400,
            "the CSV header is not usable",
            [problem("header", f"{len(names):,} columns; at most {MAX_CSV_COLUMNS} are accepted")],
        )
    counts: dict[str, int] = {}
    for name in names:
        key = normalise(name)
        if key:
            counts[key] = counts.get(key, 0) + 1
    duplicates = [problem(name, f"duplicate column ({n} times)") for name, n in counts.items() if n > 1]
    if duplicates:
        raise InputRejected(400, "the CSV header is not usable", duplicates)
    return names


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when lists and objects nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(raw: bytes) -> Any:
    """A JSON body, bounded: nesting at most MAX_JSON_DEPTH levels, numbers that fit a double.

    orjson refuses NaN, Infinity and numbers past 1e308 (a 4,300-digit integer is one) and stops at
    1,024 levels itself, so no body can exhaust the recursion limit or the integer-conversion limit.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        text = str(error)
        if "depth limit" in text:
            reason = f"nested deeper than {MAX_JSON_DEPTH} levels"
        elif "infinity" in text:
            reason = f"a number is too large (at most about 1e308); {text.rsplit(': ', 1)[-1]}"
        else:
            reason = text
        raise InputRejected(400, "malformed JSON", [problem("body", reason)]) from None
    if isinstance(data, (dict, list)) and _depth_exceeds(data, MAX_JSON_DEPTH):
        raise InputRejected(
            400, "malformed JSON", [problem("body", f"nested deeper than {MAX_JSON_DEPTH} levels")]
        )
    return data
