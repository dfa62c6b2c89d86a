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
_ADMIN_ERRORS = {
    "400": "The body is not a JSON object",
    "401": "No admin token: send `Authorization: Bearer <STORECAST_ADMIN_TOKEN>`",
    "403": "Wrong admin token, or admin actions are disabled (STORECAST_ADMIN_TOKEN is not set)",
    "404": "No such version (or not a version number such as 3 or v3), or unknown route",
    "409": (
        "Not possible as asked: already in production or archived, production cannot be archived, "
        "nothing to roll back to, or the artifact file is missing or not the one registered"
    ),
    "422": "`reason` is not a string of at most 500 characters",
}
_ACTUALS_ERRORS = {
    "400": (
        "Malformed JSON, or rows that cannot be imported (nothing is): `details` names each by "
        "`rows[i].field` (JSON) or CSV column and `line`"
    ),
    "401": "STORECAST_ADMIN_TOKEN is set and no token was sent",
    "403": "STORECAST_ADMIN_TOKEN is set and the token sent is wrong",
}
BEARER = "bearerAuth"
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": '`Bearer realm="storecast admin"`',
        "required": True,
        "schema": {"type": "string"},
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _responses(ok: str, description: str, errors: tuple[str, ...]) -> dict[str, Any]:
    return {"200": {"description": description, "content": _json(ok)}, **_errors({}, errors)}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = {"description": description, "content": _json("ErrorResponse")}
    if headers:
        response["headers"] = headers
    return response


def _errors(table: dict[str, str], codes: tuple[str, ...]) -> dict[str, Any]:
    """Error responses described from `table` first, the shared descriptions otherwise."""
    return {
        code: _error(table.get(code) or _ERRORS[code], _WWW_AUTHENTICATE if code == "401" else None)
        for code in codes
    }


def _body(name: str, example: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(name), "example": example}}
    content.update(extra or {})
    return {"required": True, "content": content}


PREDICT_EXAMPLE = {"store": 1, "dept": 1, "date": "2012-11-02", "is_holiday": False, "temperature": 55.3}
ACTUALS_CSV_EXAMPLE = "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,41231.5,FALSE\n"
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
        (schemas.AdminActionRequest, "validation"),
        (schemas.ActualRow, "validation"),
        (schemas.ActualsRequest, "validation"),
        (schemas.ModelsResponse, "serialization"),
        (schemas.ModelVersionDetail, "serialization"),
        (schemas.RunsResponse, "serialization"),
        (schemas.RunOut, "serialization"),
        (schemas.ActualsResponse, "serialization"),
        (schemas.ForecastRunsResponse, "serialization"),
        (schemas.ForecastRunOut, "serialization"),
        (schemas.SeriesForecastResponse, "serialization"),
        (schemas.AccuracyResponse, "serialization"),
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
        **_registry_paths(),
        **_published_paths(),
        "/actuals": {
            "post": {
                "summary": "Import actual sales",
                "description": (
                    "Actual weekly sales, so the performance job can score logged predictions: JSON rows "
                    '(`{"rows": [...]}` or a bare list) or a `text/csv` body in train.csv\'s format '
                    "(Store, Dept, Date, Weekly_Sales, IsHoliday; `application/csv`, `text/plain` and a "
                    "multipart `file` are read the same way). All rows or none: one bad row is a 400 "
                    "naming every problem. Upserts by store, dept and week; re-importing changes nothing. "
                    "Open unless the server sets STORECAST_ADMIN_TOKEN; then the admin bearer token is "
                    "required."
                ),
                "operationId": "importActuals",
                "tags": ["monitoring"],
                "security": [{}, {BEARER: []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    _ref("ActualsRequest"),
                                    {"type": "array", "items": _ref("ActualRow"), "minItems": 1},
                                ]
                            },
                            "example": {
                                "rows": [
                                    {"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 41231.5}
                                ]
                            },
                        },
                        "text/csv": {
                            "schema": {"type": "string"},
                            "example": ACTUALS_CSV_EXAMPLE,
                        },
                    },
                },
                "responses": {
                    "200": {"description": "Counts of the upsert", "content": _json("ActualsResponse")},
                    **_errors(_ACTUALS_ERRORS, ("400", "401", "403", "404", "405", "413", "415")),
                },
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
            {
                "name": "registry",
                "description": "Model versions and runs; stage changes need the admin token",
            },
            {"name": "published", "description": "Published forecast runs: the plan of record, as stored"},
            {"name": "monitoring", "description": "Actual sales for live accuracy"},
            {"name": "service", "description": "Health and this document"},
        ],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the server's STORECAST_ADMIN_TOKEN",
                }
            },
        },
    }


def _registry_paths() -> dict[str, Any]:
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "a version number, with or without its `v` (3 or v3)",
        "example": "v1",
    }

    def admin(summary: str, description: str, operation_id: str, with_version: bool) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "description": (
                    f"{description} Needs the admin token (401 without one, 403 when wrong or when the "
                    "server has none). The JSON body is optional. Answers with the version now in the "
                    "stage and the 10 newest stage changes of the registry."
                ),
                "operationId": operation_id,
                "tags": ["registry"],
                "security": [{BEARER: []}],
                **({"parameters": [version]} if with_version else {}),
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": _ref("AdminActionRequest"),
                            "example": {"reason": "better backtest", "by": "ana"},
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The version after the change",
                        "content": _json("ModelVersionDetail"),
                    },
                    **_errors(_ADMIN_ERRORS, ("400", "401", "403", "404", "405", "409", "413", "422")),
                },
            }
        }

    return {
        "/models": {
            "get": {
                "summary": "Model versions",
                "description": (
                    "Every registered version (newest first) with its stage, the stage history (newest "
                    "first) and the version this worker serves. No token needed."
                ),
                "operationId": "listModels",
                "tags": ["registry"],
                "responses": _responses("ModelsResponse", "The registry", ("404", "405")),
            }
        },
        "/models/{version}": {
            "get": {
                "summary": "One model version",
                "description": "The version and its own stage history (newest first).",
                "operationId": "getModel",
                "tags": ["registry"],
                "parameters": [version],
                "responses": {
                    "200": {"description": "The version", "content": _json("ModelVersionDetail")},
                    **_errors(_ADMIN_ERRORS, ("404", "405")),
                },
            }
        },
        "/models/{version}/promote": admin(
            "Promote a version",
            "Makes the version production; the production version is archived (both or neither). The "
            "artifact's SHA-256 is checked first.",
            "promoteModel",
            True,
        ),
        "/models/rollback": admin(
            "Roll back",
            "Puts back the version that was production before the current one, which is archived.",
            "rollbackModel",
            False,
        ),
        "/models/{version}/archive": admin(
            "Archive a version",
            "Retires a staging version (production cannot be archived: promote or roll back).",
            "archiveModel",
            True,
        ),
        "/runs": {
            "get": {
                "summary": "Runs",
                "description": "Training, backtest and experiment runs, newest first.",
                "operationId": "listRuns",
                "tags": ["registry"],
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "only runs of this type: `train`, `backtest` or `experiment`",
                    },
                ],
                "responses": _responses("RunsResponse", "The runs", ("404", "405", "422")),
            }
        },
        "/runs/{run_id}": {
            "get": {
                "summary": "One run",
                "description": "Parameters, data window and fingerprint, metrics, artifact and code version.",
                "operationId": "getRun",
                "tags": ["registry"],
                "parameters": [
                    {"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": _responses("RunOut", "The run", ("404", "405")),
            }
        },
    }


_RUN_ERRORS = {"404": "No such forecast run (or no run published yet), or unknown route"}


def _published_paths() -> dict[str, Any]:
    """Published forecast runs (read as stored, never recomputed) and live accuracy by lag."""
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "description": "a forecast run's id",
    }
    csv_ok = {
        "description": "Store,Dept,Date,lag,prediction,lower_80,upper_80,lower_95,upper_95; one row per "
        "series and week",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    number = {"in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    return {
        "/forecast-runs": {
            "get": {
                "summary": "Forecast runs",
                "description": "Published runs, newest first: 52 weeks for every series from a week of data.",
                "operationId": "listForecastRuns",
                "tags": ["published"],
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    }
                ],
                "responses": _responses("ForecastRunsResponse", "The runs", ("404", "405", "422")),
            }
        },
        "/forecast-runs/{run_id}": {
            "get": {
                "summary": "One forecast run",
                "description": "When, from which week of data, by which model version; rows and series.",
                "operationId": "getForecastRun",
                "tags": ["published"],
                "parameters": [run_id],
                "responses": {
                    "200": {"description": "The run", "content": _json("ForecastRunOut")},
                    **_errors(_RUN_ERRORS, ("404", "405")),
                },
            }
        },
        "/forecast-runs/{run_id}.csv": {
            "get": {
                "summary": "A forecast run as CSV",
                "description": "Every stored row of the run, streamed, by store, dept and week.",
                "operationId": "forecastRunCsv",
                "tags": ["published"],
                "parameters": [run_id],
                "responses": {"200": csv_ok, **_errors(_RUN_ERRORS, ("404", "405"))},
            }
        },
        "/forecast-runs/latest.csv": {
            "get": {
                "summary": "The newest forecast run as CSV",
                "description": "The run from the newest week of data (404 before the first is published).",
                "operationId": "latestForecastRunCsv",
                "tags": ["published"],
                "responses": {"200": csv_ok, **_errors(_RUN_ERRORS, ("404", "405"))},
            }
        },
        "/forecast-runs/latest/series/{store}/{dept}": {
            "get": {
                "summary": "One series of the newest run",
                "description": "The published forecasts of one store-department, 1-52 weeks ahead.",
                "operationId": "latestSeriesForecast",
                "tags": ["published"],
                "parameters": [{"name": "store", **number}, {"name": "dept", **number}],
                "responses": {
                    "200": {"description": "The series", "content": _json("SeriesForecastResponse")},
                    **_errors(
                        {"404": "No run published yet, the series is not in it, or unknown route"},
                        ("404", "405"),
                    ),
                },
            }
        },
        "/accuracy": {
            "get": {
                "summary": "Accuracy by lag",
                "description": (
                    "Published forecasts scored against actual sales, per lag bucket (weeks ahead), "
                    "for the production model's data lineage: live WMAE beside the seasonal naive on "
                    "the same rows and beside the model's own backtest for that bucket; bias; interval "
                    "coverage. `weeks` keeps the last N scored weeks."
                ),
                "operationId": "accuracyByLag",
                "tags": ["monitoring"],
                "parameters": [
                    {
                        "name": "weeks",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 520},
                        "description": "only the weeks after data_through minus this many weeks",
                    }
                ],
                "responses": _responses("AccuracyResponse", "Per lag bucket", ("404", "405", "422", "503")),
            }
        },
    }
