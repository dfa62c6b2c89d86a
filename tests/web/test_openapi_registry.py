"""The registry and actuals operations of /api/v1/openapi.json: documented, token-marked, and the
answers of a populated registry (runs, several versions, stage changes) match the documented schemas."""

from __future__ import annotations

import pytest

jsonschema = pytest.importorskip("jsonschema")

from app.registry import training_runs, versions  # noqa: E402

TOKEN = "registry-doc-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").get_json()


def _validate(document, path: str, method: str, response) -> None:
    """The answer's status is documented for the operation and its JSON matches that response's schema."""
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code)
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    resolver = {"components": document["components"], **schema}
    jsonschema.validate(response.get_json(), resolver)


def test_every_registry_and_actuals_operation_is_documented(document) -> None:
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert {
        ("/models", "get"),
        ("/models/{version}", "get"),
        ("/models/{version}/promote", "post"),
        ("/models/rollback", "post"),
        ("/models/{version}/archive", "post"),
        ("/runs", "get"),
        ("/runs/{run_id}", "get"),
        ("/actuals", "post"),
    } <= operations
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path in ("/models/{version}/promote", "/models/rollback", "/models/{version}/archive"):
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        assert operation["responses"]["403"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert document["paths"]["/actuals"]["post"]["security"] == [{"bearerAuth": []}]  # never open


def test_the_admin_body_schema_is_the_one_the_view_enforces(model_app, client) -> None:
    model_app.config["STORECAST_ADMIN_TOKEN"] = TOKEN
    response = client.post("/api/v1/models/rollback", json={"reason": "x" * 501}, headers=AUTH)
    assert response.status_code == 422 and response.get_json()["details"][0]["field"] == "reason"
    response = client.post("/api/v1/models/rollback", json={"reason": 5}, headers=AUTH)
    assert response.status_code == 422
    for body, field in (
        ({"by": {"name": [1, 2]}}, "by"),  # recorded as text: an object is not a name
        ({"by": "b" * 41}, "by"),
        ({"reason": "x", "foo": 1}, "foo"),  # a misspelt field is said, not ignored
    ):
        response = client.post("/api/v1/models/rollback", json=body, headers=AUTH)
        assert response.status_code == 422 and response.get_json()["details"][0]["field"] == field, body


def test_a_populated_registry_answers_as_documented(model_app, client, document, small_artifact) -> None:
    storage, name = model_app.extensions["storage"], model_app.config["MODEL_NAME"]
    run_id = training_runs.record_trained_artifact(storage, small_artifact)
    failed = training_runs.start_run(storage, "experiment", "hgb", data_source="synthetic")
    training_runs.fail_run(storage, failed, "boom")
    versions.register_version(
        storage,
        name,
        artifact_path=small_artifact.path,
        artifact_sha256=small_artifact.sha256,
        model_kind="hgb",
        metrics={
            **small_artifact.metadata["backtest"],
            "wmae": 1.5 * small_artifact.metadata["backtest"]["wmae"],
        },
        run_id=run_id,
        stage="staging",
        by="tests",
    )
    model_app.config["STORECAST_ADMIN_TOKEN"] = TOKEN
    calls = [
        ("/runs", "get", client.get("/api/v1/runs")),
        ("/runs", "get", client.get("/api/v1/runs?limit=0")),
        ("/runs/{run_id}", "get", client.get(f"/api/v1/runs/{run_id}")),
        ("/runs/{run_id}", "get", client.get(f"/api/v1/runs/{failed}")),
        ("/runs/{run_id}", "get", client.get("/api/v1/runs/99999999999999999999")),
        ("/models", "get", client.get("/api/v1/models")),
        ("/models/{version}", "get", client.get("/api/v1/models/v2")),
        ("/models/{version}", "get", client.get("/api/v1/models/99999999999999999999")),
        ("/models/{version}/promote", "post", client.post("/api/v1/models/2/promote")),
        # v2's backtest of the same weeks is worse than production's: refused, then forced
        ("/models/{version}/promote", "post", client.post("/api/v1/models/v2/promote", headers=AUTH)),
        (
            "/models/{version}/promote",
            "post",
            client.post("/api/v1/models/v2/promote", json={"force": True}, headers=AUTH),
        ),
        ("/models/{version}/promote", "post", client.post("/api/v1/models/v2/promote", headers=AUTH)),
        (
            "/models/rollback",
            "post",
            client.post("/api/v1/models/rollback", json={"reason": "check", "by": "ana"}, headers=AUTH),
        ),
        # rolled back: v2 is archived already
        ("/models/{version}/archive", "post", client.post("/api/v1/models/v2/archive", headers=AUTH)),
        (
            "/models/{version}/archive",
            "post",
            client.post("/api/v1/models/v2/archive", headers={"Authorization": "Bearer wrong"}),
        ),
        (
            "/actuals",
            "post",
            client.post(
                "/api/v1/actuals",
                json=[{"store": 1, "dept": 8, "date": "2012-11-02", "weekly_sales": 10.5}],
                headers=AUTH,
            ),
        ),
        ("/actuals", "post", client.post("/api/v1/actuals", json={"rows": []}, headers=AUTH)),
        ("/actuals", "post", client.post("/api/v1/actuals", json={"rows": []})),
    ]
    statuses = [response.status_code for _, _, response in calls]
    assert statuses[:8] == [200, 422, 200, 200, 404, 200, 200, 404]  # the reads
    assert statuses[8:] == [401, 409, 200, 409, 200, 409, 403, 200, 422, 401]
    for path, method, response in calls:
        _validate(document, path, method, response)
    listed = calls[0][2].get_json()["runs"]
    assert {run["status"] for run in listed} == {"finished", "failed"}
    assert calls[5][2].get_json()["history"]
    assert "worse than production" in calls[9][2].get_json()["error"]
