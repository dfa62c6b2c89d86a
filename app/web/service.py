"""The one path from a validated request to served predictions, shared by the API and the pages:
get the production Forecaster, call it, log every prediction, shape the result as plain dicts.

The web layer computes no forecast of its own: all numbers come from the Forecaster.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import g, has_request_context, request

from app.forecasting.forecaster import BANDS
from app.serving import ModelUnavailable, current_forecaster
from app.web.errors import ApiError, detail, forecast_error_detail
from app.web.schemas import ForecastRequest, PredictRequest, StoreForecastQuery

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass
class Served:
    """Predictions as API dicts plus what produced them."""

    predictions: list[dict[str, Any]]
    model_version: str
    request_id: str
    latency_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


def request_id() -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one; stable within one request."""
    if not has_request_context():
        return uuid.uuid4().hex
    rid = g.get("request_id")
    if rid is None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_id = rid
    return rid


def forecaster() -> Any:
    """The production Forecaster, or ApiError 503 when none can be served."""
    try:
        return current_forecaster()
    except ModelUnavailable as error:
        raise ApiError(503, str(error), [detail("model", "no production model is loaded")]) from None


def forecaster_or_none() -> Any:
    """The production Forecaster, or None: pages render their no-model state instead of an error."""
    try:
        return current_forecaster()
    except ModelUnavailable:
        return None


def _forecast_error_type() -> type[Exception]:
    from app.forecasting.forecaster import ForecastError

    return ForecastError


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the core; its ForecastError (unknown store, week out of range...) becomes a 422."""
    try:
        return fn(*args, **kwargs)
    except _forecast_error_type() as error:
        raise ApiError(
            422, str(getattr(error, "message", None) or error), [forecast_error_detail(error)]
        ) from None


def iso_week(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date().isoformat()
    return str(value)[:10]


def _plain(value: Any) -> Any:
    if type(value) is float:  # the common case first
        return value if math.isfinite(value) else None
    if value is None or type(value) in (int, bool, str):
        return value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return iso_week(value)
    return value


def prediction_dict(item: Any, prediction_id: Any = None) -> dict[str, Any]:
    """A core Prediction (or its to_dict()) as the API's JSON-ready dict.

    Reads the dataclass's attributes directly: dataclasses.asdict deep-copies and costs ~0.1 ms a
    prediction, which a 1,000-row batch cannot afford.
    """
    data = item if isinstance(item, dict) else getattr(item, "__dict__", None) or item.to_dict()
    get = data.get
    out: dict[str, Any] = {
        "store": int(data["store"]),
        "dept": int(data["dept"]),
        "week": iso_week(data["week"]),
        "horizon": int(get("horizon") or 0),
        "data_through": iso_week(through) if (through := get("data_through")) else None,
        "prediction": round(float(data["prediction"]), 2),
        "lower_80": round(float(data["lower_80"]), 2),
        "upper_80": round(float(data["upper_80"]), 2),
        "lower_95": round(float(data["lower_95"]), 2),
        "upper_95": round(float(data["upper_95"]), 2),
        "inputs": {str(k): _plain(v) for k, v in (get("inputs") or {}).items()},
        "assumed": {str(k): str(v) for k, v in (get("assumed") or {}).items()},
        "cold_start": bool(get("cold_start", False)),
        "model_version": str(get("model_version") or ""),
    }
    if prediction_id is not None:
        out["prediction_id"] = str(prediction_id)
    return out


def log_and_shape(
    predictions: list[Any], *, source: str, rid: str, latency_ms: float
) -> list[dict[str, Any]]:
    """Write every prediction to the prediction log; ids from the log become prediction_ids."""
    from app.monitoring.prediction_log import log_predictions

    ids = (
        log_predictions(predictions, source=source, request_id=rid, latency_ms=latency_ms)
        if predictions
        else []
    )
    if not ids or len(ids) != len(predictions):  # logging switched off: still give each a unique id
        ids = [f"{rid}-{i}" for i in range(len(predictions))]
    return [prediction_dict(p, pid) for p, pid in zip(predictions, ids, strict=True)]


def _version(model: Any, predictions: list[Any]) -> str:
    version = getattr(model, "version", None)
    if not version and predictions:
        version = getattr(predictions[0], "model_version", None)
    return str(version or "")


def check_rows(rows: list[PredictRequest], lines: list[int] | None = None) -> list[dict[str, Any]]:
    """Per-row errors the core would raise for the whole batch at once (unknown store, week out of
    range), so that a batch answer names every bad row instead of the first problem."""
    model = forecaster()
    valid_range = getattr(model, "valid_range", None)
    lo = hi = None
    if callable(valid_range):
        first, last = valid_range()
        lo, hi = first.date(), last.date()
    stores = set(model.stores())
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        extra = {"row": index} if lines is None else {"row": index, "line": lines[index]}
        if row.store not in stores:
            errors.append(detail(f"rows[{index}].store", f"unknown store {row.store}", **extra))
        friday = row.date + dt.timedelta(days=(4 - row.date.weekday()) % 7)  # weeks end on Friday
        if lo is not None and not lo <= friday <= hi:
            errors.append(detail(f"rows[{index}].date", f"the week must be between {lo} and {hi}", **extra))
    return errors


def predict(rows: list[PredictRequest], *, source: str) -> Served:
    """Predict validated rows (single or batch) and log them."""
    model = forecaster()
    rid = request_id()
    started = time.perf_counter()
    predictions = _call(model.predict_rows, [row.to_row() for row in rows])
    latency = (time.perf_counter() - started) * 1000
    shaped = log_and_shape(predictions, source=source, rid=rid, latency_ms=latency)
    return Served(shaped, _version(model, predictions), rid, latency)


def default_start(model: Any) -> dt.date:
    """The first week the model can forecast: the week after its history."""
    origin = getattr(model, "origin", None)
    return (origin + dt.timedelta(days=7)).date() if origin is not None else dt.date.today()


def forecast(req: ForecastRequest, *, source: str) -> Served:
    """Consecutive weeks of one store-department, logged."""
    model = forecaster()
    rid = request_id()
    start = req.start or default_start(model)
    started = time.perf_counter()
    predictions = _call(
        model.forecast, req.store, req.dept, start, req.weeks, covariates=req.covariate_dicts()
    )
    latency = (time.perf_counter() - started) * 1000
    shaped = log_and_shape(predictions, source=source, rid=rid, latency_ms=latency)
    return Served(shaped, _version(model, predictions), rid, latency, {"start": start})


def forecast_store(query: StoreForecastQuery, *, source: str) -> Served:
    """Every department of a store plus the store total; departments ranked by forecast total."""
    model = forecaster()
    rid = request_id()
    start = query.start or default_start(model)
    started = time.perf_counter()
    result = _call(model.forecast_store, query.store, start, query.weeks)
    latency = (time.perf_counter() - started) * 1000
    departments = result.departments
    flat = [p for dept in sorted(departments) for p in departments[dept]]
    shaped = log_and_shape(flat, source=source, rid=rid, latency_ms=latency)
    by_dept: dict[int, list[dict[str, Any]]] = {}
    for item in shaped:
        by_dept.setdefault(item["dept"], []).append(item)
    ranked = sorted(by_dept.items(), key=lambda kv: -sum(p["prediction"] for p in kv[1]))
    dept_rows = [
        {
            "dept": dept,
            "rank": rank,
            "total": round(sum(p["prediction"] for p in preds), 2),
            "predictions": preds,
        }
        for rank, (dept, preds) in enumerate(ranked, start=1)
    ]
    total = []
    for item in result.total:
        data = (
            item.to_dict()
            if hasattr(item, "to_dict")
            else dict(item)
            if isinstance(item, dict)
            else vars(item)
        )
        total.append(
            {
                "week": iso_week(data["week"]),
                "horizon": int(data.get("horizon") or 0),
                **{name: round(float(data[name]), 2) for name in BANDS},
            }
        )
    return Served(
        shaped,
        _version(model, flat),
        rid,
        latency,
        {"start": start, "total": total, "departments": dept_rows},
    )
