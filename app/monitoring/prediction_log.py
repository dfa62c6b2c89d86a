"""The prediction log: every prediction served, written in one short transaction per request.

This module is the only writer of `prediction_log`. The request path pays for one multi-row INSERT
(SQLAlchemy Core, not ORM objects) inside one transaction: on SQLite in WAL mode with a busy timeout,
several gunicorn workers writing at once queue on the write lock instead of losing rows, and the
caller gets the row ids back (for the response or for tracing).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import insert

from app.monitoring import metrics
from app.storage import PredictionLog, Storage, utcnow

log = logging.getLogger(__name__)

SOURCES = ("api", "page", "batch", "forecast")
_TABLE = PredictionLog.__table__
_FIELDS = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _clean(mapping: Any) -> dict[str, Any]:
    """JSON-safe copy of an inputs/assumed dict: NaN becomes null, numpy scalars become Python ones."""
    if not mapping:
        return {}
    out: dict[str, Any] = {}
    for key, value in dict(mapping).items():
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        out[str(key)] = value
    return out


def to_rows(
    predictions: Iterable[Any],
    *,
    source: str,
    request_id: str,
    latency_ms: float,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The log rows for a list of Prediction objects (or their to_dict() form)."""
    created = now or utcnow()
    rows = []
    for item in predictions:
        row = {
            "created_at": created,
            "request_id": str(request_id)[:64],
            "source": source,
            "model_version": str(_get(item, "model_version", "") or "")[:32],
            "store": int(_get(item, "store")),
            "dept": int(_get(item, "dept")),
            "week": _as_date(_get(item, "week")),
            "horizon": int(_get(item, "horizon", 0) or 0),
            "inputs": _clean(_get(item, "inputs")),
            "assumed": _clean(_get(item, "assumed")),
            "cold_start": bool(_get(item, "cold_start", False)),
            "latency_ms": float(latency_ms),
        }
        for field in _FIELDS:
            row[field] = float(_get(item, field))
        rows.append(row)
    return rows


def write_rows(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    """One transaction, one multi-row INSERT ... RETURNING id; ids in the order of `rows`."""
    if not rows:
        return []
    statement = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
    with storage.engine.begin() as connection:
        result = connection.execute(statement, rows)
        return [row[0] for row in result]


def log_predictions(
    predictions: list[Any], *, source: str, request_id: str, latency_ms: float, storage: Storage | None = None
) -> list[int]:
    """Log every prediction of one request; returns the new row ids ([] when logging is switched off).

    Raises on a database failure: a prediction that cannot be logged is not silently served
    unlogged (the API turns the error into a 503). Pass `storage` outside a Flask app context.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if storage is None:
        if not has_app_context():
            raise RuntimeError("log_predictions needs an app context or an explicit storage")
        if not current_app.config.get("PREDICTION_LOGGING", True):
            return []
        storage = current_app.extensions["storage"]
    started = time.perf_counter()
    rows = to_rows(predictions, source=source, request_id=request_id, latency_ms=latency_ms)
    ids = write_rows(storage, rows)
    metrics.REGISTRY.predictions_served(source, len(rows))
    elapsed = (time.perf_counter() - started) * 1000
    if elapsed > 250:
        log.warning("logging %d predictions took %.0f ms (database contention?)", len(rows), elapsed)
    return ids
