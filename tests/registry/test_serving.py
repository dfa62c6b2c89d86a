"""Serving follows the registry: hot swap across app instances, and a corrupt artifact never serves."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.registry import versions
from app.serving.holder import ModelUnavailable
from app.storage import Alert
from tests.conftest import make_test_app
from tests.registry.conftest import flip_bytes, register


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


def test_a_corrupt_artifact_is_refused_and_the_previous_version_keeps_serving(tmp_path, artifacts):
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    register(app, artifacts[0])
    register(app, artifacts[1])
    holder = app.extensions["model_holder"]
    assert holder.get().version == "v1"

    versions.promote(storage, "storecast", 2, by="tests")  # a valid file when promoted...
    flip_bytes(artifacts[1].path)  # ...corrupted before this worker loads it

    served = holder.get()
    assert served.version == "v1"
    assert holder.status()["refused"] is True
    holder.get()
    holder.refresh()
    with storage.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "artifact")).all()
        assert len(alerts) == 1  # opened once, not once per check
        alert = alerts[0]
        assert alert.severity == "critical" and alert.resolved_at is None
        assert alert.details["version"] == 2 and alert.details["expected_sha256"] == artifacts[1].sha256
        assert "v2" in alert.message

    # The predictions still come from v1.
    prediction = served.forecast(*_first_series(served), weeks=1)[0]
    assert prediction.model_version == "v1"

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
