"""What a request gets beyond the shared state (app.extensions): a request id, the production model
named in the answer's headers, and the prediction service, whose errors become the API's error shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, has_request_context, request

from app.extensions import holder, storage
from app.forecasting.forecaster import Forecaster, ForecastError
from app.serving import predictions
from app.serving.holder import ModelUnavailable
from app.serving.predictions import Caller, Served
from app.web.api.errors import ApiError, detail, forecast_error_detail
from app.web.headers import add_missing
from app.web.schemas import ForecastRequest, PredictRequest, StoreForecastQuery
from app.web.security import RETRY_AFTER_SECONDS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
T = TypeVar("T")


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


def forecaster() -> Forecaster:
    """The production Forecaster, or ApiError 503 when none can be served.

    The answer's headers name the version that answers (X-Model-Version) and the registry's
    production version (X-Production-Version): they differ only for the seconds a worker takes to
    follow a promotion. A worker that cannot load production's artifact answers 503 instead
    (app/serving/holder.py says why)."""
    try:
        model = holder().get()
    except ModelUnavailable as error:
        why = [detail("model", "this worker cannot serve the production model")]
        raise ApiError(503, str(error), why, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    if has_request_context():
        g.served_versions = (str(model.version), holder().production_version)
    return model


def version_headers(response: Any) -> Any:
    """X-Model-Version and X-Production-Version on every answer a model made (see forecaster())."""
    served = g.get("served_versions")
    if served:
        pairs = [("X-Model-Version", served[0])]
        if served[1]:
            pairs.append(("X-Production-Version", served[1]))
        add_missing(response.headers, pairs)
    return response


def forecaster_or_none() -> Forecaster | None:
    """The production Forecaster, or None: pages render their no-model state instead of an error."""
    try:
        model = holder().get()
    except ModelUnavailable:
        return None
    if has_request_context():
        g.served_versions = (str(model.version), holder().production_version)
    return model


def _caller(source: str) -> Caller:
    """This request as a caller; its predictions are logged unless PREDICTION_LOGGING is off."""
    log_to = storage() if current_app.config.get("PREDICTION_LOGGING", True) else None
    return Caller(source, request_id(), log_to)


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the service; the core's ForecastError (unknown store, week out of range...) becomes a 422."""
    try:
        return fn(*args, **kwargs)
    except ForecastError as error:
        raise ApiError(422, str(error.message or error), [forecast_error_detail(error)]) from None


def check_rows(
    rows: list[PredictRequest], lines: list[int] | None = None, indexes: list[int] | None = None
) -> list[dict[str, Any]]:
    return predictions.check_rows(forecaster(), [row.to_row() for row in rows], lines, indexes)


def predict(
    rows: list[PredictRequest], *, source: str, explain: bool = False, quantiles: list[float] | None = None
) -> Served:
    return _call(
        predictions.predict,
        forecaster(),
        [row.to_row() for row in rows],
        _caller(source),
        explain,
        quantiles,
    )


def predict_batch(
    rows: list[PredictRequest],
    write: Callable[[list[dict[str, Any]]], T],
    *,
    source: str = "batch",
    quantiles: list[float] | None = None,
) -> predictions.ServedBatch[T]:
    """A validated batch of any size, predicted and logged chunk by chunk (see predictions.predict_batch)."""
    return _call(predictions.predict_batch, forecaster(), rows, _caller(source), write, quantiles=quantiles)


def forecast(req: ForecastRequest, *, source: str, explain: bool | None = None) -> Served:
    """`explain`: None takes the request's own flag."""
    return _call(
        predictions.forecast,
        forecaster(),
        req.store,
        req.dept,
        req.start,
        req.weeks,
        req.covariate_dicts(),
        _caller(source),
        req.explain if explain is None else explain,
        req.quantiles,
    )


def forecast_store(query: StoreForecastQuery, *, source: str) -> Served:
    return _call(
        predictions.forecast_store,
        forecaster(),
        query.store,
        query.start,
        query.weeks,
        _caller(source),
    )


def forecast_total(level: str, dept: int | None, start: Any, weeks: int) -> dict[str, Any]:
    """The chain's total or a department's across stores (predictions.forecast_total), not logged."""
    answer = _call(predictions.forecast_total, forecaster(), level, dept, start, weeks)
    return {**answer, "request_id": request_id()}


def what_if(
    store: int, dept: int, start: Any, weeks: int, given: dict[str, Any], served_total: float
) -> dict[str, Any]:
    """The forecast's sensitivity to its covariates, and to those a planner set (not logged: a
    comparison)."""
    return _call(predictions.what_if, forecaster(), store, dept, start, weeks, given, served_total)
