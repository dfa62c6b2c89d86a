"""Serving follows the registry: hot swap across app instances, and a corrupt artifact never serves."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.registry import versions
from app.serving.holder import ModelUnavailable
from app.storage import Alert
from tests.helpers.app import make_test_app
from tests.helpers.registry import flip_bytes, register


def test_no_model_means_model_unavailable(registry_app):
    with pytest.raises(ModelUnavailable, match="no production model"):
        registry_app.extensions["model_holder"].get()


def test_two_apps_sharing_a_database_see_a_promotion(tmp_path, artifacts):
    first = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=0.0)
    second = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=0.0)  # another "worker" on the same database
    register(first, artifacts[0])
    register(first, artifacts[1])
    holder_1, holder_2 = first.extensions["model_holder"], second.extensions["model_holder"]
    assert holder_1.get().version == "v1" and holder_2.get().version == "v1"
    served = holder_2.get()

    versions.promote(first.extensions["storage"], "storecast", 2, by="tests")

    assert holder_2.get().version == "v2"  # the second app swapped without a restart
    assert holder_2.get() is not served
    assert holder_1.get().version == "v2"
    versions.rollback(second.extensions["storage"], "storecast", by="tests")
    assert holder_1.get().version == "v1"


def test_threads_asking_while_the_first_model_loads_all_get_it(tmp_path, artifacts):
    """The scheduler's jobs start together: none may be told "no model" while another loads it."""
    app = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=3600.0)
    register(app, artifacts[0])
    holder = app.extensions["model_holder"]
    served, refused = [], []

    def ask() -> None:
        try:
            served.append(holder.get().version)
        except ModelUnavailable as error:
            refused.append(error)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refused == [] and served == ["v1"] * 4


def test_the_check_is_throttled(tmp_path, artifacts):
    app = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=3600.0)
    register(app, artifacts[0])
    register(app, artifacts[1])
    holder = app.extensions["model_holder"]
    assert holder.get().version == "v1"
    versions.promote(app.extensions["storage"], "storecast", 2, by="tests")
    assert holder.get().version == "v1"  # no registry query per request
    holder.refresh()
    assert holder.get().version == "v2"


def test_a_corrupt_artifact_is_refused_and_no_other_version_is_served_in_its_place(tmp_path, artifacts):
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    register(app, artifacts[0])
    register(app, artifacts[1])
    holder = app.extensions["model_holder"]
    assert holder.get().version == "v1"

    versions.promote(storage, "storecast", 2, by="tests")  # a valid file when promoted...
    flip_bytes(artifacts[1].path)  # ...corrupted before this worker loads it

    with pytest.raises(ModelUnavailable, match="v2 cannot be loaded.*holds v1"):
        holder.get()
    assert holder.status()["refused"] is True and holder.version == "v1"
    holder.refresh()
    with storage.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "artifact")).all()
        assert len(alerts) == 1  # opened once, not once per check
        alert = alerts[0]
        assert alert.severity == "critical" and alert.resolved_at is None
        assert alert.details["version"] == 2 and alert.details["expected_sha256"] == artifacts[1].sha256
        assert "v2" in alert.message

    # Rolling back to v1 (or promoting a sound v3) ends the incident without a restart.
    versions.rollback(storage, "storecast", by="tests")
    assert holder.get().version == "v1" and holder.status()["refused"] is False


def test_a_corrupt_first_model_is_unavailable_not_a_crash(tmp_path, artifacts):
    app = make_test_app(tmp_path)
    register(app, artifacts[0])
    flip_bytes(artifacts[0].path)
    with pytest.raises(ModelUnavailable, match="cannot be loaded"):
        app.extensions["model_holder"].get()
    with app.extensions["storage"].session() as session:
        assert session.scalars(select(Alert).where(Alert.kind == "artifact")).first() is not None


def _first_series(forecaster):
    import pandas as pd

    store = forecaster.stores()[0]
    dept = forecaster.departments(store)[0]
    return store, dept, (pd.Timestamp(forecaster.origin) + pd.Timedelta(weeks=1)).date()


def _valid_row(forecaster) -> dict:
    store, dept, week = _first_series(forecaster)
    return {"store": int(store), "dept": int(dept), "date": week.isoformat()}


def test_a_worker_left_on_another_version_refuses_to_forecast_until_production_loads(tmp_path, artifacts):
    """One worker loaded v2 before its file was corrupted, another still holds v1: the first keeps its
    copy of production, the second answers 503 (never a v1 forecast beside v2's) with /ready naming both,
    and no text shows a path; a rollback to v1 ends the refusal."""
    models_dir = str(artifacts[0].path.parent)
    stale = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=0.0)
    current = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=0.0)
    storage = stale.extensions["storage"]
    register(stale, artifacts[0])
    register(stale, artifacts[1])
    row = _valid_row(stale.extensions["model_holder"].get())
    assert stale.extensions["model_holder"].version == "v1"
    versions.promote(storage, "storecast", 2, by="tests")
    assert current.extensions["model_holder"].get().version == "v2"
    flip_bytes(artifacts[1].path)

    ready = stale.test_client().get("/api/v1/ready")
    body = ready.get_json()
    assert ready.status_code == 503 and body["status"] == "unavailable"
    assert body["model_version"] == "v1" and body["production_version"] == "v2"
    assert "holds v1" in body["detail"] and "production version is v2" in body["detail"]
    assert artifacts[1].path.name in body["detail"] and models_dir not in ready.get_data(as_text=True)

    held = current.test_client().get("/api/v1/ready")  # the last good copy of production itself
    assert held.status_code == 200 and held.get_json()["model_version"] == "v2"

    refused = stale.test_client().post("/api/v1/predict", json=row)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    error = refused.get_json()["error"]
    assert "v2 cannot be loaded" in error and "holds v1" in error and models_dir not in error
    same = current.test_client().post("/api/v1/predict", json=row)
    assert same.status_code == 200
    assert same.headers["X-Model-Version"] == same.headers["X-Production-Version"] == "v2"

    page = stale.test_client().get("/monitoring").get_data(as_text=True)
    assert 'data-testid="not-production"' in page and models_dir not in page
    assert models_dir not in stale.test_client().get("/models").get_data(as_text=True)
    with storage.session() as session:
        alert = session.scalars(select(Alert).where(Alert.kind == "artifact")).one()
        assert models_dir not in alert.message and models_dir not in str(alert.details)
        assert artifacts[1].path.name in alert.message and "/ready 503" in alert.message
        assert "keeps serving it" in alert.message and "rather than forecast with another" in alert.message

    versions.rollback(storage, "storecast", by="tests")
    back = stale.test_client().post("/api/v1/predict", json=row)
    assert back.status_code == 200 and back.get_json()["model_version"] == "v1"


def test_a_missing_artifact_is_named_without_its_server_path(tmp_path, artifacts):
    app = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=0.0)
    register(app, artifacts[0])
    models_dir = str(artifacts[0].path.parent)
    artifacts[0].path.unlink()
    client = app.test_client()

    predicted = client.post("/api/v1/predict", json={"store": 1, "dept": 1, "date": "2012-11-02"})
    assert predicted.status_code == 503
    assert f"artifact {artifacts[0].path.name} does not exist" in predicted.get_json()["error"]
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 503 and ready.get_json()["production_version"] == "v1"
    for text in (
        predicted.get_data(as_text=True),
        ready.get_data(as_text=True),
        client.get("/monitoring").get_data(as_text=True),
        client.get("/models").get_data(as_text=True),
    ):
        assert models_dir not in text
    with app.extensions["storage"].session() as session:
        alert = session.scalars(select(Alert).where(Alert.kind == "artifact")).one()
        assert models_dir not in alert.message and "does not exist" in alert.message
