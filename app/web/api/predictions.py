"""Predictions and forecasts: one week, a batch (JSON or CSV), consecutive weeks, a whole store."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from app.limits import MAX_BATCH_DETAILS
from app.serving import predictions
from app.web import context
from app.web.api import bp
from app.web.api.errors import ApiError, detail
from app.web.api.openapi import json_body, json_object, operation, query_args, validate
from app.web.csv_io import (
    csv_answer,
    csv_part,
    decode,
    json_answer,
    json_part,
    parse_csv,
    quantile_columns,
    validate_batch,
)
from app.web.schemas import (
    BatchQuery,
    BatchRequest,
    BatchResponse,
    ForecastRequest,
    ForecastResponse,
    PredictOneRequest,
    PredictResponse,
    QuantileLevels,
    StoreForecastParams,
    StoreForecastResponse,
)

PREDICT_EXAMPLE = {"store": 1, "dept": 1, "date": "2012-11-02", "is_holiday": False, "temperature": 55.3}


BATCH_CSV_EXAMPLE = "Store,Dept,Date,IsHoliday\n1,1,2012-11-02,FALSE\n1,2,2012-11-02,FALSE\n"


@bp.post("/predict")
@operation(
    "Predict one week",
    "predictions",
    description=(
        "Weekly sales of one store-department for one week, with 80% and 95% intervals. "
        "Covariates left out are filled by the model and named in `assumed`. With `explain`, the answer "
        "also says why this number: `components` that add up to it and last year's sales of the same week. "
        "A store-department without sales history is answered with a cold-start estimate: `cold_start` "
        "true and a `warning` saying what it rests on."
    ),
    body=PredictOneRequest,
    body_example=PREDICT_EXAMPLE,
    ok=PredictResponse,
    ok_description="The prediction",
    shaped=True,
)
def predict() -> Any:
    """One week of one store-department."""
    row = json_body()
    served = context.predict([row], source="api", explain=row.explain, quantiles=row.quantiles)
    return {**served.predictions[0], "request_id": served.request_id}


@bp.post("/predict/batch")
@operation(
    "Predict many rows",
    "predictions",
    description=(
        'At most MAX_BATCH_ROWS (100,000) rows as JSON `{"rows": [...]}` or a `text/csv` body with the '
        "Kaggle train.csv/test.csv columns (Store, Dept, Date, IsHoliday, ...). One invalid row rejects "
        "the batch with a 422 listing every bad row by index (and CSV line) and field. `?format=csv` "
        "(or `Accept: text/csv`) returns the predictions as CSV. Rows naming a store-department without "
        "sales history are cold-start estimates: `cold_start` true and a `warning` on each, and a `warning` "
        "on the whole answer (the `X-Storecast-Warning` header with CSV)."
    ),
    body=BatchRequest,
    body_example={"rows": [PREDICT_EXAMPLE, {"store": 1, "dept": 2, "date": "2012-11-02"}]},
    csv_body=BATCH_CSV_EXAMPLE,
    query=BatchQuery,
    ok=BatchResponse,
    csv_response="One prediction per row, in order (CSV with ?format=csv)",
    errors={413: "Too large: more rows than MAX_BATCH_ROWS, or a body over MAX_CONTENT_LENGTH"},
)
def predict_batch() -> Any:
    """Up to MAX_BATCH_ROWS rows ({"rows": [...]} or text/csv); all rows valid, or a 422 listing each."""
    params = query_args()
    limit = int(current_app.config["MAX_BATCH_ROWS"])
    lines: list[int] | None = None
    passthrough = None
    quantiles = params.quantiles
    if request.mimetype == "text/csv":
        parsed = parse_csv(decode(request.get_data()), limit)
        rows, lines, passthrough = parsed.rows, parsed.lines, parsed.passthrough
    elif request.mimetype == "application/json":
        data = json_object()
        unknown = sorted(set(data) - {"rows", "quantiles"})
        if unknown:
            raise ApiError(422, "invalid request", [detail(name, "unknown field") for name in unknown])
        if "quantiles" in data:
            if quantiles is not None:
                message = "given in the body and the query string: send one"
                raise ApiError(422, "invalid request", [detail("quantiles", message)])
            quantiles = validate(QuantileLevels, {"quantiles": data["quantiles"]}).quantiles
        rows = data.get("rows")
        if not isinstance(rows, list):
            raise ApiError(422, "invalid request", [detail("rows", "required: a list of row objects")])
        if not rows:
            raise ApiError(422, "invalid request", [detail("rows", "at least one row is required")])
        if len(rows) > limit:
            raise ApiError(
                413,
                f"too many rows: at most {limit} rows per batch",
                [detail("rows", f"got {len(rows)} rows")],
            )
    else:
        raise ApiError(
            415,
            "unsupported content type: send application/json or text/csv",
            [detail("Content-Type", f"got {request.mimetype or 'none'}")],
        )
    checked = validate_batch(rows, lines)
    del rows  # the raw rows are not needed once validated: a large batch holds one copy
    if checked.errors:
        bad = checked.bad_rows
        raise ApiError(
            422,
            f"{bad:,} invalid row{'s' if bad != 1 else ''}: nothing was predicted",
            checked.errors,
            limit=MAX_BATCH_DETAILS,
        )
    if params.format == "csv" or request.accept_mimetypes.best == "text/csv":
        extra = passthrough if passthrough and passthrough[0] else None
        columns = quantile_columns(quantiles)
        served = context.predict_batch(checked.valid, csv_part(extra, columns), quantiles=quantiles)
        response = Response(csv_answer(served.parts, extra, columns), mimetype="text/csv")
        response.headers["Content-Disposition"] = "attachment; filename=predictions.csv"
        response.headers["X-Model-Version"] = served.model_version
        if served.cold_starts:
            response.headers["X-Storecast-Warning"] = predictions.batch_warning(served.cold_starts)
        return response
    served = context.predict_batch(checked.valid, json_part, quantiles=quantiles)
    head: dict[str, Any] = {
        "model_version": served.model_version,
        "request_id": served.request_id,
        "count": served.count,
    }
    if served.cold_starts:
        head["warning"] = predictions.batch_warning(served.cold_starts)
    return Response(json_answer(head, "predictions", served.parts), mimetype="application/json")


@bp.post("/forecast")
@operation(
    "Forecast consecutive weeks",
    "predictions",
    description=(
        "1-52 consecutive weeks of one store-department from `date` (the same name as in /predict; `start` "
        "is accepted as an alias); optional covariates. A store-department without sales history is "
        "answered with a cold-start estimate, as by /predict: `cold_start` true on each week and a "
        "`warning` on the answer and on each week. "
        "With `explain`, every week also carries `components` and last year's sales of the same week."
    ),
    body=ForecastRequest,
    body_example={
        "store": 1,
        "dept": 1,
        "date": "2012-11-02",
        "weeks": 8,
        "covariates": [{"markdown1": 5000}],
        "explain": True,
    },
    ok=ForecastResponse,
    ok_description="One entry per week",
    shaped=True,
)
def forecast() -> Any:
    """Consecutive weeks (1-52) of one store-department, optional covariates per week."""
    req = json_body()
    served = context.forecast(req, source="forecast")
    first = served.predictions[0]["week"] if served.predictions else served.extra["start"].isoformat()
    body = {
        "model_version": served.model_version,
        "request_id": served.request_id,
        "store": req.store,
        "dept": req.dept,
        "start": first,
        "weeks": len(served.predictions),
        "predictions": served.predictions,
    }
    if any(p["cold_start"] for p in served.predictions):
        body["warning"] = predictions.cold_start_warning(req.store, req.dept)
    return body


@bp.get("/stores/<store>/forecast")
@operation(
    "Forecast a whole store",
    "predictions",
    description="Every department (ranked by forecast total) and the store total per week.",
    query=StoreForecastParams,
    ok=StoreForecastResponse,
    ok_description="Departments and store total",
)
def store_forecast(store: str) -> Any:
    """Every department of a store and the store total, for `weeks` weeks from `start`."""
    req = query_args(store=store)
    served = context.forecast_store(req, source="forecast")
    total = served.extra["total"]
    return {
        "model_version": served.model_version,
        "request_id": served.request_id,
        "store": req.store,
        "start": total[0]["week"] if total else served.extra["start"].isoformat(),
        "weeks": len(total),
        "total": total,
        "departments": served.extra["departments"],
    }
