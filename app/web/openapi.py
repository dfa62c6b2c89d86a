"""The OpenAPI 3.1 document: components generated from the pydantic schemas that validate requests,
paths written by hand around them (so the docs describe exactly what is enforced)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from app.web import schemas

REF = "#/components/schemas/{model}"

_ERRORS = {
    "400": "Malformed JSON, or the body is not a JSON object",
    "404": "Unknown route",
    "405": "Method not allowed",
    "413": "Too large: more rows than MAX_BATCH_ROWS, or a body over MAX_CONTENT_LENGTH",
    "415": "Unsupported Content-Type",
    "422": "Validation failed: `details` lists every bad field (and row)",
    "503": "No production model is loaded, or the database is unavailable",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _responses(ok: str, description: str, errors: tuple[str, ...]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": description, "content": _json(ok)}}
    for code in errors:
        responses[code] = {"description": _ERRORS[code], "content": _json("ErrorResponse")}
    return responses


def _body(name: str, example: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(name), "example": example}}
    content.update(extra or {})
    return {"required": True, "content": content}


PREDICT_EXAMPLE = {"store": 1, "dept": 1, "date": "2012-11-02", "is_holiday": False, "temperature": 55.3}
CSV_EXAMPLE = "Store,Dept,Date,IsHoliday\n1,1,2012-11-02,FALSE\n1,2,2012-11-02,FALSE\n"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process; the schemas do not change at run time)."""
    models = [
        (schemas.PredictRequest, "validation"),
        (schemas.BatchRequest, "validation"),
        (schemas.ForecastRequest, "validation"),
        (schemas.Covariates, "validation"),
        (schemas.ErrorResponse, "serialization"),
        (schemas.PredictResponse, "serialization"),
        (schemas.BatchResponse, "serialization"),
        (schemas.ForecastResponse, "serialization"),
        (schemas.StoreForecastResponse, "serialization"),
        (schemas.HealthResponse, "serialization"),
        (schemas.ReadyResponse, "serialization"),
        (schemas.ModelResponse, "serialization"),
        (schemas.FeaturesResponse, "serialization"),
    ]
    _, top = models_json_schema(models, ref_template=REF)
    components = top.get("$defs", {})
    common = ("404", "405")
    body_errors = ("400", "404", "405", "413", "415", "422", "503")
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "summary": "Liveness",
                "description": "The process answers; needs neither a model nor the database.",
                "operationId": "health",
                "tags": ["service"],
                "responses": _responses("HealthResponse", "Alive", common),
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness",
                "description": "A production model is loaded and the database answers. 503 otherwise.",
                "operationId": "ready",
                "tags": ["service"],
                "responses": {
                    "200": {"description": "Ready", "content": _json("ReadyResponse")},
                    "503": {"description": "Not ready", "content": _json("ReadyResponse")},
                },
            }
        },
        "/predict": {
            "post": {
                "summary": "Predict one week",
                "description": (
                    "Weekly sales of one store-department for one week, with 80% and 95% intervals. "
                    "Covariates left out are filled by the model and named in `assumed`."
                ),
                "operationId": "predict",
                "tags": ["predictions"],
                "requestBody": _body("PredictRequest", PREDICT_EXAMPLE),
                "responses": _responses("PredictResponse", "The prediction", body_errors),
            }
        },
        "/predict/batch": {
            "post": {
                "summary": "Predict many rows",
                "description": (
                    'At most MAX_BATCH_ROWS (1,000) rows as JSON `{"rows": [...]}` or a `text/csv` body with '
                    "the Kaggle train.csv/test.csv columns (Store, Dept, Date, IsHoliday, ...). One invalid "
                    "row "
                    "rejects the batch with a 422 listing every bad row by index (and CSV line) and field. "
                    "`?format=csv` (or `Accept: text/csv`) returns the predictions as CSV."
                ),
                "operationId": "predictBatch",
                "tags": ["predictions"],
                "requestBody": _body(
                    "BatchRequest",
                    {"rows": [PREDICT_EXAMPLE, {"store": 1, "dept": 2, "date": "2012-11-02"}]},
                    {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
                ),
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["json", "csv"]},
                        "description": "`csv` returns the predictions as a CSV file",
                    }
                ],
                "responses": {
                    **_responses("BatchResponse", "One prediction per row, in order", body_errors),
                    "200": {
                        "description": "One prediction per row, in order (CSV with ?format=csv)",
                        "content": {
                            **_json("BatchResponse"),
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                },
            }
        },
        "/forecast": {
            "post": {
                "summary": "Forecast consecutive weeks",
                "description": "1-52 consecutive weeks of one store-department; optional covariates.",
                "operationId": "forecast",
                "tags": ["predictions"],
                "requestBody": _body(
                    "ForecastRequest",
                    {
                        "store": 1,
                        "dept": 1,
                        "start": "2012-11-02",
                        "weeks": 8,
                        "covariates": [{"markdown1": 5000}],
                    },
                ),
                "responses": _responses("ForecastResponse", "One entry per week", body_errors),
            }
        },
        "/stores/{store}/forecast": {
            "get": {
                "summary": "Forecast a whole store",
                "description": "Every department (ranked by forecast total) and the store total per week.",
                "operationId": "storeForecast",
                "tags": ["predictions"],
                "parameters": [
                    {
                        "name": "store",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "start",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date"},
                        "description": "first week; default: the week after the model's history",
                    },
                    {
                        "name": "weeks",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": schemas.MAX_WEEKS,
                            "default": schemas.DEFAULT_WEEKS,
                        },
                    },
                ],
                "responses": _responses(
                    "StoreForecastResponse", "Departments and store total", ("404", "422", "503")
                ),
            }
        },
        "/model": {
            "get": {
                "summary": "The production model",
                "description": "Version, kind, parameters, training window, backtest, importances.",
                "operationId": "model",
                "tags": ["model"],
                "responses": _responses("ModelResponse", "The model", ("503",)),
            }
        },
        "/model/features": {
            "get": {
                "summary": "Inputs and features",
                "description": "Request fields with types and valid ranges; the features the model computes.",
                "operationId": "modelFeatures",
                "tags": ["model"],
                "responses": _responses("FeaturesResponse", "Inputs and features", ("503",)),
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "tags": ["service"],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Storecast API",
            "version": "1",
            "description": (
                "Weekly sales forecasts per store and department. Errors are "
                '`{"error": "...", "details": [{"field": "...", "message": "..."}]}`. '
                "Every prediction carries the model_version that made it and a prediction_id from the "
                "prediction log."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "tags": [
            {"name": "predictions", "description": "Predictions and forecasts (each one is logged)"},
            {"name": "model", "description": "The production model"},
            {"name": "service", "description": "Health and this document"},
        ],
        "paths": paths,
        "components": {"schemas": components},
    }
