"""The OpenAPI document is generated from the routes: every /api/v1 route declares its operation,
every operation lists what the server stack can answer, query strings are checked by the models the
document shows, and answers are written by the models it shows."""

from __future__ import annotations

import pytest
from flask import Flask, Response

from app.web.api.openapi import API_PREFIX, COMMON_ERRORS, operation
from app.web.schemas import HealthResponse, ReadyResponse


def test_every_api_route_is_documented(app) -> None:
    undocumented = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIX) and not hasattr(app.view_functions[rule.endpoint], "__openapi__")
    ]
    assert not undocumented


def test_every_operation_lists_the_statuses_of_the_server_stack(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, entry in item.items():
            assert {str(status) for status in COMMON_ERRORS} <= set(entry["responses"]), (path, method)
            assert entry["operationId"] and entry["summary"]
    assert {"ErrorResponse", "PredictRequest", "ModelsResponse"} <= set(document["components"]["schemas"])


def test_optional_query_parameters_are_never_null(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    runs = {p["name"]: p for p in document["paths"]["/runs"]["get"]["parameters"]}
    assert runs["type"]["schema"] == {"enum": ["train", "backtest", "experiment"], "type": "string"}
    assert runs["limit"]["schema"] == {"default": 50, "maximum": 500, "minimum": 1, "type": "integer"}


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/runs?limit=0", "limit"),
        ("/api/v1/runs?type=deploy", "type"),
        ("/api/v1/runs?color=red", "color"),
        ("/api/v1/forecast-runs?limit=x", "limit"),
        ("/api/v1/accuracy?weeks=9999", "weeks"),
        ("/api/v1/stores/1/forecast?weeks=53", "weeks"),
        ("/api/v1/stores/1/forecast?colour=1", "colour"),
    ],
)
def test_query_strings_are_validated_by_their_documented_model(client, url, field) -> None:
    response = client.get(url)
    assert response.status_code == 422, response.get_json()
    assert [d["field"] for d in response.get_json()["details"]] == [field]


def _one_route_app(view) -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/api/v1/x", view_func=view)
    return app


def test_an_answer_is_written_by_its_documented_model() -> None:
    @operation("x", "service", ok=HealthResponse, error_models={503: ReadyResponse})
    def view():
        return {"status": "ok", "secret": "not in the model"}

    response = _one_route_app(view).test_client().get("/api/v1/x")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_an_error_status_is_written_by_its_error_model_and_a_response_passes_as_is() -> None:
    @operation("x", "service", ok=HealthResponse, error_models={503: ReadyResponse})
    def unready():
        return {"status": "unavailable", "model_loaded": False, "database": True}, 503

    @operation("y", "service", ok=HealthResponse)
    def csv():
        return Response("a,b\n", mimetype="text/csv")

    answer = _one_route_app(unready).test_client().get("/api/v1/x")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "unavailable", "model_loaded": False, "database": True}
    assert _one_route_app(csv).test_client().get("/api/v1/x").data == b"a,b\n"
