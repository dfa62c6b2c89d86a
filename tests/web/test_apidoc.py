"""The OpenAPI document is generated from the routes: every /api/v1 route declares its operation,
every operation lists what the server stack can answer, and query strings are checked by the models
the document shows."""

from __future__ import annotations

import pytest

from app.web.apidoc import API_PREFIX, COMMON_ERRORS


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
        for method, operation in item.items():
            assert {str(status) for status in COMMON_ERRORS} <= set(operation["responses"]), (path, method)
            assert operation["operationId"] and operation["summary"]
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
