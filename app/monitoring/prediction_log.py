"""The prediction log: every prediction served, written in one short transaction per request.

This module is the only writer of `prediction_log`. The request path pays for one multi-row INSERT
(SQLAlchemy Core, not ORM objects) inside one transaction: on SQLite in WAL mode with a busy timeout,
several gunicorn workers writing at once queue on the write lock instead of losing rows, and the
caller gets the row ids back (for the response or for tracing).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import insert

from app.forecasting.prediction import Prediction
from app.jsonable import jsonable
from app.monitoring import metrics
from app.storage import PredictionLog, Storage, utcnow

log = logging.getLogger(__name__)

SOURCES = ("api", "page", "batch", "forecast")
_TABLE = PredictionLog.__table__
_FIELDS = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def to_rows(
    predictions: Iterable[Any],
    *,
    source: str,
    request_id: str,
    latency_ms: float,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The log rows for a list of core Predictions (or dicts with the same keys).

    A Prediction's inputs are plain JSON already (the core makes them so) and go in as they are; a
    dict's are cleaned first. The request path logs every prediction it serves, so this stays lean.
    """
    created = now or utcnow()
    request_id = str(request_id)[:64]
    latency_ms = float(latency_ms)
    rows = []
    for item in predictions:
        plain = type(item) is Prediction
        data = item.__dict__ if plain else item if isinstance(item, Mapping) else vars(item)
        get = data.get
        row = {
            "created_at": created,
            "request_id": request_id,
            "source": source,
            "model_version": str(get("model_version") or "")[:32],
            "store": int(data["store"]),
            "dept": int(data["dept"]),
            "week": _as_date(data["week"]),
            "horizon": int(get("horizon") or 0),
            "inputs": (get("inputs") or {}) if plain else jsonable(get("inputs") or {}),
            "assumed": (get("assumed") or {}) if plain else jsonable(get("assumed") or {}),
            "cold_start": bool(get("cold_start", False)),
            "latency_ms": latency_ms,
        }
        for field in _FIELDS:
            row[field] = float(data[field])
        rows.append(row)
    return rows


def write_rows(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    """One transaction, one INSERT ... RETURNING id for all rows; ids in the order of `rows`.

    On SQLite (the default) the statement goes straight to the driver: a quarter of the cost of
    SQLAlchemy's per-row parameter processing, which matters on the request path. Values are written
    in the exact formats SQLAlchemy's SQLite types use, so the ORM and the jobs read them back as usual.
    Elsewhere SQLAlchemy Core's "insertmanyvalues" sends one multi-row statement. Either way the ids
    come from one statement in one transaction, so they rise in the order of the rows.
    """
    if not rows:
        return []
    if storage.engine.dialect.name == "sqlite":
        return _write_sqlite(storage, rows)
    with storage.engine.begin() as connection:
        result = connection.execute(insert(_TABLE).returning(_TABLE.c.id), rows)
        return sorted(row[0] for row in result)


_COLUMNS = (
    "created_at", "request_id", "source", "model_version", "store", "dept", "week", "horizon", "inputs",
    "assumed", "cold_start", "prediction", "lower_80", "upper_80", "lower_95", "upper_95", "latency_ms",
)  # fmt: skip
_SQLITE_CHUNK = 500  # rows per statement: 8,500 parameters, under SQLite's 32,766
_sqlite_statements: dict[int, str] = {}


def _sqlite_statement(count: int) -> str:
    statement = _sqlite_statements.get(count)
    if statement is None:
        group = "(" + ",".join("?" * len(_COLUMNS)) + ")"
        statement = (
            f"INSERT INTO prediction_log ({','.join(_COLUMNS)}) VALUES "
            + ",".join([group] * count)
            + " RETURNING id"
        )
        _sqlite_statements[count] = statement
    return statement


def _write_sqlite(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    dumps = orjson.dumps  # ~10x the standard library's speed; SQLAlchemy's JSON type reads it back
    params: list[Any] = []
    stamps: dict[dt.datetime, str] = {}
    for row in rows:
        created = row["created_at"]
        if created not in stamps:
            stamps[created] = created.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
        params += (
            stamps[created],
            row["request_id"], row["source"], row["model_version"], row["store"], row["dept"],
            row["week"].isoformat(), row["horizon"],
            dumps(row["inputs"]).decode(), dumps(row["assumed"]).decode(),
            1 if row["cold_start"] else 0, row["prediction"], row["lower_80"], row["upper_80"],
            row["lower_95"], row["upper_95"], row["latency_ms"],
        )  # fmt: skip
    width = len(_COLUMNS)
    ids: list[int] = []
    connection = storage.engine.raw_connection()
    try:
        cursor = connection.cursor()
        for start in range(0, len(rows), _SQLITE_CHUNK):
            count = min(_SQLITE_CHUNK, len(rows) - start)
            cursor.execute(_sqlite_statement(count), params[start * width : (start + count) * width])
            ids += sorted(row[0] for row in cursor.fetchall())
        cursor.close()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return ids


def log_predictions(
    storage: Storage, predictions: list[Any], *, source: str, request_id: str, latency_ms: float
) -> list[int]:
    """Log every prediction of one request; returns the new row ids.

    Raises on a database failure: a prediction that cannot be logged is not silently served
    unlogged (the API turns the error into a 503).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    started = time.perf_counter()
    rows = to_rows(predictions, source=source, request_id=request_id, latency_ms=latency_ms)
    ids = write_rows(storage, rows)
    metrics.predictions_served(source, len(rows))
    elapsed = (time.perf_counter() - started) * 1000
    if elapsed > 250:
        log.warning("logging %d predictions took %.0f ms (database contention?)", len(rows), elapsed)
    return ids
