"""The OpenAPI document, generated from the routes: each /api/v1 view declares its operation with
@operation (summary, request and response models, the errors it answers), and the document is built
by walking the app's URL map. The same declaration validates and writes: `json_body()` and
`query_args()` check the request with the models the document shows, and a view's JSON answer is
serialised by its response model, so what is documented is what is enforced and what is sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from flask import Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from app.limits import parse_json
from app.web.api import bp
from app.web.api.errors import ApiError, detail, validation_details
from app.web.schemas import ErrorResponse

API_PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"
F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

# What any operation may answer, whatever its view does: the router, the size limits and the server
# stack in front of the app (gunicorn refuses an over-long request line with 414; the proxy rate-limits).
COMMON_ERRORS = {
    404: "Unknown route, or the resource named in the path does not exist",
    405: "Method not allowed",
    413: "Too large: a body over MAX_CONTENT_LENGTH (MAX_ACTUALS_BYTES for actuals; or the proxy's limit)",
    414: "The request line (path and query string) is too long for the server",
    429: "Too many requests: the proxy's rate limit",
    503: "No production model is loaded, or the database is busy or unreachable (retry after Retry-After)",
}
BODY_ERRORS = {
    403: "A browser request whose Origin names another site",
    408: "The request body stalled (GUNICORN_BODY_TIMEOUT)",
    400: "Malformed JSON, nested deeper than 32 levels, a number beyond a double, or not a JSON object",
    415: "Unsupported Content-Type",
    422: "Validation failed: `details` names every bad field (and row)",
}
QUERY_ERRORS = {422: "A query parameter is unknown or out of range: `details` names it"}
ADMIN_ERRORS = {
    401: "No admin token: send `Authorization: Bearer <STORECAST_ADMIN_TOKEN>`",
    403: "Wrong admin token, or admin actions are disabled (STORECAST_ADMIN_TOKEN is not set)",
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": '`Bearer realm="storecast admin"`',
        "required": True,
        "schema": {"type": "string"},
    }
}
TAGS = [
    {"name": "predictions", "description": "Predictions and forecasts (each one is logged)"},
    {"name": "model", "description": "The production model"},
    {"name": "registry", "description": "Model versions and runs; stage changes need the admin token"},
    {"name": "published", "description": "Published forecast runs: the plan of record, as stored"},
    {"name": "monitoring", "description": "Actual sales, alerts and live accuracy"},
    {"name": "service", "description": "Health and this document"},
]


@dataclass(frozen=True)
class Operation:
    """One documented operation; see `operation`."""

    summary: str
    tag: str
    description: str = ""
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_example: Any = None
    body_schema: dict[str, Any] | None = None  # instead of the model's, when JSON takes more shapes
    csv_body: str | None = None  # an example: the operation also takes text/csv
    query: type[BaseModel] | None = None
    ok: type[BaseModel] | None = None
    ok_description: str = "OK"
    csv_response: str | None = None  # the description when the answer is (or can be) CSV
    json_response: bool = True
    errors: dict[int, str] = field(default_factory=dict)
    error_models: dict[int, type[BaseModel]] = field(default_factory=dict)
    admin: str | None = None  # "required": the admin bearer token
    path_descriptions: dict[str, str] = field(default_factory=dict)
    extra_models: tuple[type[BaseModel], ...] = ()  # models `body_schema` refers to
    # The view's 200 answer is built from the `ok` model's fields only, each already its JSON type
    # (app.serving.predictions.prediction_dict): written as it is, without a second pass through the
    # model. Testing and debug apps still compare it with the model's writing (serialise).
    shaped: bool = False


def operation(summary: str, tag: str, **details: Any) -> Callable[[F], F]:
    """Declare a view's operation for the OpenAPI document, for json_body/query_args, and for its answer.

    The view returns its JSON answer as a dict (or a (dict, status) pair): it is validated and written
    by the response model the document shows for that status. A Response (CSV, a file) passes as is.
    """
    spec = Operation(summary=summary, tag=tag, **details)

    def mark(view: F) -> F:
        @functools.wraps(view)
        def answer(*args: Any, **kwargs: Any) -> Any:
            return serialise(spec, view(*args, **kwargs))

        answer.__openapi__ = spec  # type: ignore[attr-defined]
        return answer  # type: ignore[return-value]

    return mark


def serialise(spec: Operation, result: Any) -> Any:
    """A view's result as its documented model writes it (fields it does not declare are left out)."""
    if isinstance(result, Response):
        return result
    body, status = result if isinstance(result, tuple) else (result, 200)
    model = spec.ok if status < 300 else spec.error_models.get(status)
    if model is None:
        raise TypeError(f"{spec.summary!r} answers {status} without a documented model")
    if spec.shaped and status == 200 and isinstance(body, dict):
        data = orjson.dumps(body)
        if current_app.testing or current_app.debug:
            _check_shaped(spec, model, body, data)
        return Response(data, status=status, mimetype="application/json")
    data = model.model_validate(body).model_dump_json(exclude_unset=True)
    return Response(data, status=status, mimetype="application/json")


def _check_shaped(spec: Operation, model: type[BaseModel], body: dict[str, Any], data: bytes) -> None:
    """A shaped answer must be what its model writes: the same fields in the same order, the same values."""
    documented = model.model_validate(body).model_dump_json(exclude_unset=True)
    if orjson.dumps(orjson.loads(data)) != orjson.dumps(orjson.loads(documented)):
        raise TypeError(f"{spec.summary!r}: the shaped answer differs from what {model.__name__} writes")


def _current() -> Operation:
    view = current_app.view_functions[request.endpoint]
    return view.__openapi__


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    """`data` as `model`, or ApiError 422 naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(422, "invalid request", validation_details(error, prefix)) from None


def json_object() -> dict[str, Any]:
    """The body as a JSON object: 415 for another content type, 400 for malformed JSON or a non-object."""
    if request.mimetype != "application/json":
        raise ApiError(
            415,
            "unsupported content type: send application/json",
            [detail("Content-Type", f"got {request.mimetype or 'none'}")],
        )
    data = parse_json(request.get_data(cache=True))  # bounded: depth, numbers (app.limits)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", [detail("body", f"got {type(data).__name__}")])
    return data


def json_body() -> Any:
    """The request's JSON body validated by the operation's body model."""
    spec = _current()
    if not spec.body_required and not request.get_data(cache=True).strip():
        return spec.body.model_validate({})
    return validate(spec.body, json_object())


def query_args(**extra: Any) -> Any:
    """The query string validated by the operation's query model (`extra`: path values it also holds)."""
    args = {key: values[0] if len(values) == 1 else values for key, values in request.args.lists()}
    return validate(_current().query, {**args, **extra})


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    return {"$ref": REF.format(model=model if isinstance(model, str) else model.__name__)}


def _path(rule: str) -> tuple[str, list[tuple[str, str]]]:
    """/models/<version> as /models/{version}, with (name, converter) of each path variable."""
    variables: list[tuple[str, str]] = []

    def replace(match: re.Match[str]) -> str:
        converter, name = match.group(1) or "string", match.group(2)
        variables.append((name, converter))
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", replace, rule.removeprefix(API_PREFIX)), variables


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's null branch: an optional parameter is left out."""
    prop = {key: value for key, value in prop.items() if key != "title"}
    options = [option for option in prop.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        prop.update(options[0])
    elif options:
        prop["anyOf"] = options
    if prop.get("default", 0) is None:
        del prop["default"]
    return prop


def _parameters(spec: Operation, variables: list[tuple[str, str]], schemas: dict[str, Any]) -> list[dict]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1} if converter == "int" else {"type": "string"},
            **({"description": spec.path_descriptions[name]} if name in spec.path_descriptions else {}),
        }
        for name, converter in variables
    ]
    if spec.query is not None:
        schema = schemas[spec.query.__name__]
        path_names = {name for name, _ in variables}
        for name, prop in schema.get("properties", {}).items():
            if name in path_names:
                continue
            prop = _query_schema(prop)
            description = prop.pop("description", None)
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                    **({"description": description} if description else {}),
                }
            )
    return params


def _responses(spec: Operation) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if spec.json_response:
        content["application/json"] = {"schema": _ref(spec.ok)} if spec.ok else {}
    if spec.csv_response:
        content["text/csv"] = {"schema": {"type": "string"}}
    ok = {"description": spec.csv_response or spec.ok_description, "content": content}
    errors = {**COMMON_ERRORS}
    if spec.body is not None or spec.body_schema is not None:
        errors.update(BODY_ERRORS)
    if spec.query is not None:
        errors.update(QUERY_ERRORS)
    if spec.admin:
        errors.update(ADMIN_ERRORS)
    errors.update(spec.errors)
    responses: dict[str, Any] = {"200": ok}
    for status in sorted(errors):
        model = spec.error_models.get(status, "ErrorResponse")
        response: dict[str, Any] = {
            "description": errors[status],
            "content": {"application/json": {"schema": _ref(model)}},
        }
        if status == 401:
            response["headers"] = WWW_AUTHENTICATE
        responses[str(status)] = response
    return responses


def _request_body(spec: Operation) -> dict[str, Any] | None:
    if spec.body is None and spec.body_schema is None:
        return None
    json_content: dict[str, Any] = {"schema": spec.body_schema or _ref(spec.body)}
    if spec.body_example is not None:
        json_content["example"] = spec.body_example
    content: dict[str, Any] = {"application/json": json_content}
    if spec.csv_body:
        content["text/csv"] = {"schema": {"type": "string"}, "example": spec.csv_body}
    return {"required": spec.body_required, "content": content}


def _operation_id(endpoint: str) -> str:
    name = endpoint.rpartition(".")[2].removeprefix("api_")
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _models(specs: list[Operation]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for spec in specs:
        for model in (spec.body, spec.query, spec.ok, *spec.error_models.values(), *spec.extra_models):
            if model is not None:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def openapi_document() -> dict[str, Any]:
    """The app's document, built once per process (the routes do not change at run time)."""
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build_document(current_app._get_current_object())
    return document


def build_document(app: Flask, error_model: type[BaseModel] = ErrorResponse) -> dict[str, Any]:
    """The document for every /api/v1 route of `app` that declares an operation."""
    routes = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "__openapi__", None)
        if spec is not None and rule.rule.startswith(API_PREFIX):
            routes.append((rule, spec))
    models = [error_model, *_models([spec for _, spec in routes])]
    modes = [
        (model, "serialization" if model.__name__.endswith(("Response", "Out")) else "validation")
        for model in models
    ]
    _, top = models_json_schema(modes, ref_template=REF)
    components = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for rule, spec in sorted(routes, key=lambda item: item[0].rule):
        path, variables = _path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            entry: dict[str, Any] = {
                "summary": spec.summary,
                "operationId": _operation_id(rule.endpoint),
                "tags": [spec.tag],
                "responses": _responses(spec),
            }
            if spec.description:
                entry["description"] = spec.description
            if spec.admin:
                entry["security"] = [{BEARER: []}]
            parameters = _parameters(spec, variables, components)
            if parameters:
                entry["parameters"] = parameters
            body = _request_body(spec)
            if body:
                entry["requestBody"] = body
            paths.setdefault(path, {})[method.lower()] = entry
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
        "servers": [{"url": API_PREFIX}],
        "tags": TAGS,
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


@bp.get("/openapi.json")
@operation("This document", "service", description="OpenAPI 3.1, generated from the routes and their models.")
def openapi() -> Any:
    """The OpenAPI 3.1 document, generated from the routes and their models."""
    return jsonify(openapi_document())
