"""The registry over HTTP: open reads, token-guarded admin actions, CSRF-protected pages."""

from __future__ import annotations

import pytest

from app.registry import training_runs, versions
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import make_test_app
from tests.helpers.forms import csrf_token
from tests.helpers.registry import register

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def two_versions(registry_app, artifacts):
    register(registry_app, artifacts[0])
    register(registry_app, artifacts[1])
    return registry_app


def assert_error_shape(response, status):
    assert response.status_code == status
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], list)
    return body


def test_list_models_is_open(two_versions):
    response = two_versions.test_client().get("/api/v1/models")
    assert response.status_code == 200
    body = response.get_json()
    assert body["production"] == "v1"
    assert [(v["label"], v["stage"]) for v in body["versions"]] == [("v2", "staging"), ("v1", "production")]
    assert {"wmae", "model_kind", "created_at", "artifact_sha256"} <= set(body["versions"][0])
    assert [h["to_stage"] for h in body["history"]] == ["staging", "production"]


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}x"}, 403),
    ],
)
def test_admin_actions_need_the_token(two_versions, headers, status):
    client = two_versions.test_client()
    for url in ("/api/v1/models/2/promote", "/api/v1/models/rollback", "/api/v1/models/2/archive"):
        response = client.post(url, headers=headers)
        assert_error_shape(response, status)
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert versions.production_version(two_versions.extensions["storage"], "storecast")["version"] == 1


def test_admin_actions_are_disabled_without_a_configured_token(tmp_path, artifacts):
    app = make_test_app(tmp_path)  # no STORECAST_ADMIN_TOKEN
    register(app, artifacts[0])
    register(app, artifacts[1])
    client = app.test_client()
    assert_error_shape(client.post("/api/v1/models/2/promote"), 401)
    body = assert_error_shape(
        client.post("/api/v1/models/2/promote", headers={"Authorization": "Bearer x"}), 403
    )
    assert "disabled" in body["error"]


def test_promote_and_rollback_through_the_api(two_versions):
    client = two_versions.test_client()
    holder = two_versions.extensions["model_holder"]
    assert holder.get().version == "v1"

    response = client.post(
        "/api/v1/models/v2/promote", headers=BEARER, json={"reason": "canary ok", "by": "ops"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["label"] == "v2" and body["stage"] == "production"
    assert body["history"][0]["changed_by"] == "admin-token (ops)"
    assert body["history"][0]["reason"] == "canary ok"
    assert holder.get().version == "v2"

    response = client.post("/api/v1/models/rollback", headers=BEARER)
    assert response.status_code == 200 and response.get_json()["label"] == "v1"
    assert client.get("/api/v1/models").get_json()["production"] == "v1"


def test_api_errors_are_json(two_versions):
    client = two_versions.test_client()
    body = assert_error_shape(client.post("/api/v1/models/9/promote", headers=BEARER), 404)
    assert body["details"][0]["field"] == "version"
    assert_error_shape(client.post("/api/v1/models/nope/promote", headers=BEARER), 404)
    assert_error_shape(client.post("/api/v1/models/1/promote", headers=BEARER), 409)  # already production
    assert_error_shape(client.post("/api/v1/models/1/archive", headers=BEARER), 409)
    assert_error_shape(
        client.post("/api/v1/models/2/promote", headers=BEARER, data="[1]", content_type="application/json"),
        400,
    )
    assert_error_shape(client.post("/api/v1/models/2/promote", headers=BEARER, json={"reason": 5}), 422)
    assert_error_shape(client.get("/api/v1/models/42"), 404)
    assert_error_shape(client.get("/api/v1/runs/42"), 404)
    assert_error_shape(client.get("/api/v1/runs?limit=0"), 422)


def test_runs_api(registry_app):
    storage = registry_app.extensions["storage"]
    run_id = training_runs.start_run(storage, "backtest", "rf")
    training_runs.fail_run(storage, run_id, "ValueError: bad origin")
    client = registry_app.test_client()
    listed = client.get("/api/v1/runs").get_json()["runs"]
    assert listed[0]["id"] == run_id and listed[0]["status"] == "failed"
    assert client.get(f"/api/v1/runs/{run_id}").get_json()["error"] == "ValueError: bad origin"


def test_models_page_lists_versions_and_history(two_versions):
    html = two_versions.test_client().get("/models").get_data(as_text=True)
    assert "v1" in html and "v2" in html and "production" in html and "staging" in html
    assert "Stage history" in html and 'name="csrf_token"' in html
    assert "<script" not in html.split("<main", 1)[1]  # no inline scripts (CSP)


def test_page_actions_need_csrf_and_the_token(two_versions):
    client = two_versions.test_client()
    storage = two_versions.extensions["storage"]
    form = {"action": "promote", "version": "2", "token": ADMIN_TOKEN, "reason": "from the page"}

    assert client.post("/models/action", data=form).status_code == 400  # no CSRF token

    token = csrf_token(client, "/models")
    response = client.post("/models/action", data={**form, "csrf_token": token, "token": "wrong"})
    assert response.status_code == 403 and "wrong admin token" in response.get_data(as_text=True)
    response = client.post("/models/action", data={**form, "csrf_token": token, "token": ""})
    assert response.status_code == 401
    assert versions.production_version(storage, "storecast")["version"] == 1

    response = client.post("/models/action", data={**form, "csrf_token": token, "by": "pat"})
    assert response.status_code == 303
    assert versions.production_version(storage, "storecast")["version"] == 2
    assert "v2 promoted to production" in client.get("/models").get_data(as_text=True)
    change = versions.stage_history(storage, "storecast")[0]
    assert (change["changed_by"], change["reason"]) == ("admin-token (pat)", "from the page")

    response = client.post(  # a pasted token's trailing space, as the API's bearer header allows
        "/models/action", data={"action": "rollback", "csrf_token": token, "token": ADMIN_TOKEN + " "}
    )
    assert response.status_code == 303
    assert versions.production_version(storage, "storecast")["version"] == 1

    response = client.post(
        "/models/action",
        data={"action": "archive", "version": "1", "csrf_token": token, "token": ADMIN_TOKEN},
    )
    assert response.status_code == 409 and "is in production" in response.get_data(as_text=True)


def test_model_card_and_run_pages(two_versions, small_dataset):
    storage = two_versions.extensions["storage"]
    with training_runs.track_run(storage, "experiment", "hgb", dataset=small_dataset) as run:
        run.log_metrics({"wmae": 2000.0, "by_bucket": {"1-4": {"wmae": 1800.0}, "5-8": {"wmae": 2100.0}}})
    client = two_versions.test_client()
    card = client.get("/models/v1")
    assert card.status_code == 200 and "v1" in card.get_data(as_text=True)
    assert client.get("/models/99").status_code == 404
    page = client.get("/runs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and f"#{run.id}" in html  # the WMAE-by-horizon chart of the run
    assert client.get(f"/runs?run={run.id}").status_code == 200
    assert client.get("/runs?run=99999999999999&run=x").status_code == 200  # past INTEGER: ignored
    assert client.get(f"/runs/{run.id}").status_code == 200
    assert client.get("/runs/999").status_code == 404


def test_anonymous_callers_see_artifact_names_not_server_paths(
    two_versions, artifacts, small_dataset, tmp_path
):
    storage = two_versions.extensions["storage"]
    with training_runs.track_run(storage, "train", "hgb", data_source=str(tmp_path / "walmart")) as run:
        run.log_artifact(artifacts[0])
    client = two_versions.test_client()
    server_path = str(tmp_path)
    for url in ("/api/v1/models", "/api/v1/models/v1", "/api/v1/runs", f"/api/v1/runs/{run.id}",
                "/models", "/models/v1", "/runs", f"/runs/{run.id}"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        assert server_path not in response.get_data(as_text=True), url
    listed = client.get("/api/v1/models").get_json()["versions"]
    assert {v["artifact_path"] for v in listed} == {artifacts[0].path.name, artifacts[1].path.name}
    assert client.get(f"/api/v1/runs/{run.id}").get_json()["data_source"] == "walmart"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    whole = client.get("/api/v1/models", headers=admin).get_json()["versions"]
    assert {v["artifact_path"] for v in whole} == {str(artifacts[0].path), str(artifacts[1].path)}
    assert client.get(f"/api/v1/runs/{run.id}", headers=admin).get_json()["artifact_path"] == str(
        artifacts[0].path
    )


def test_a_failed_run_shows_anyone_its_error_without_server_paths(registry_app, tmp_path):
    storage = registry_app.extensions["storage"]
    missing = tmp_path / "walmart" / "train.csv"
    with pytest.raises(FileNotFoundError), training_runs.track_run(storage, "train", "hgb") as run:
        missing.open()
    client = registry_app.test_client()
    for url in ("/api/v1/runs", f"/api/v1/runs/{run.id}", "/runs", f"/runs/{run.id}"):
        text = client.get(url).get_data(as_text=True)
        assert str(tmp_path) not in text and "train.csv" in text, url
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert str(missing) in client.get(f"/api/v1/runs/{run.id}", headers=admin).get_json()["error"]


def test_the_runs_chart_reads_the_buckets_the_run_page_and_model_card_show():
    """One backtest figure per horizon bucket everywhere: the lag buckets pooled over the backtest's
    origins when a run has them, not its one origin's coarser buckets."""
    from app.web.pages.registry import wmae_by_bucket_chart

    lag_buckets = {"1": {"wmae": 1.0}, "2-4": {"wmae": 2.0}}
    metrics = {"by_bucket": {"1-4": {"wmae": 9.0}}, "by_lag_bucket": lag_buckets}
    svg = wmae_by_bucket_chart([{"id": 1, "model_kind": "hgb", "metrics": metrics}])
    assert "weeks ahead (1, 2-4)" in svg and "1-4" not in svg
