"""Which version each worker serves, under a real gunicorn with two workers on 127.0.0.1: a worker that
cannot load production's artifact is not ready and refuses to forecast rather than answer with another
version, every answer names the version that made it, and no answer, page or alert shows where the
models live."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.registry import versions
from app.storage import Alert
from tests.helpers.app import make_test_app
from tests.helpers.gunicorn import call, database_url, replace_a_worker, running

ANSWERS = 24  # fresh connections per look: enough for both workers to answer some


def _copy(artifact, models: Path, stem: str) -> Path:
    models.mkdir(parents=True, exist_ok=True)
    path = models / f"{stem}.joblib"
    shutil.copyfile(artifact.path, path)
    shutil.copyfile(artifact.metadata_path, path.with_suffix(".json"))
    return path


def _register(storage, path: Path, artifact) -> None:
    versions.register_version(
        storage,
        "storecast",
        artifact_path=path,
        artifact_sha256=artifact.sha256,
        model_kind="hgb",
        metrics={},
        by="tests",
    )


def _ready_answers(port: int) -> list[tuple[int, dict]]:
    return [
        (status, json.loads(text))
        for status, _, text in (call(port, "GET", "/api/v1/ready") for _ in range(ANSWERS))
    ]


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


@pytest.mark.slow  # a gunicorn start, a worker restart and about 100 requests: half a minute on 2 busy cores
def test_a_worker_that_cannot_load_production_is_not_ready_and_names_the_versions(tmp_path, small_artifact):
    models = tmp_path / "models"
    app = make_test_app(tmp_path, DATABASE_URL=database_url(tmp_path), MODELS_DIR=str(models))
    storage = app.extensions["storage"]
    paths = [_copy(small_artifact, models, f"storecast-{n}") for n in (1, 2, 3)]
    for path in paths:
        _register(storage, path, small_artifact)  # the first is production
    model = app.extensions["model_holder"].get()
    store = model.stores()[0]
    row = {
        "store": int(store),
        "dept": int(model.departments(store)[0]),
        "date": str(model.valid_range()[0].date()),
    }

    with running(tmp_path, MODEL_REFRESH_SECONDS="0.2") as service:  # the master preloads v1
        port = service.port
        versions.promote(storage, "storecast", 2, by="tests", verify=False, force=True)
        deadline = time.monotonic() + 20
        while {body["model_version"] for _, body in _ready_answers(port)} != {"v2"}:
            assert time.monotonic() < deadline, "the workers did not follow the promotion"
            time.sleep(0.3)

        # v2's file is corrupted and a worker restarts: forked from the master, it holds v1.
        _corrupt(paths[1])
        replace_a_worker(service)
        time.sleep(0.5)
        answers = _ready_answers(port)
        for status, body in answers:  # ready only while serving production: never v1 with a 200
            assert (status, body["model_version"]) in {(200, "v2"), (503, "v1")}, body
            assert body["production_version"] == "v2"
        stale = [body for status, body in answers if status == 503]
        assert stale, "the restarted worker never answered"
        assert "this worker holds v1 but the production version is v2" in stale[0]["detail"]
        assert paths[1].name in stale[0]["detail"]
        body, header = json.dumps(row).encode(), {"Content-Type": "application/json"}
        statuses, deadline = set(), time.monotonic() + 20
        while 503 not in statuses:  # until the restarted worker has answered a forecast
            assert time.monotonic() < deadline, "the restarted worker never answered a forecast"
            for status, headers, _ in (call(port, "POST", "/api/v1/predict", body, header) for _ in range(8)):
                statuses.add(status)
                if status == 200:  # the restarted worker refuses (503) rather than answer as v1
                    assert headers["X-Model-Version"] == "v2"

        # Production v3 has no file at all: every worker is not ready and says which version answers.
        paths[2].unlink()
        paths[2].with_suffix(".json").unlink()
        versions.promote(storage, "storecast", 3, by="tests", verify=False, force=True)
        time.sleep(0.5)
        for status, body in _ready_answers(port):
            assert status == 503 and body["production_version"] == "v3", body
            assert f"artifact {paths[2].name} does not exist" in body["detail"]
        texts = []
        for _ in range(8):  # no worker forecasts with another version than production's
            status, headers, text = call(
                port,
                "POST",
                "/api/v1/predict",
                json.dumps(row).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 503 and headers["Retry-After"], text
            assert "the production model v3 cannot be loaded" in json.loads(text)["error"]
            texts.append(text)
        texts += [call(port, "GET", path)[2] for path in ("/api/v1/ready", "/monitoring", "/models", "/")]

    assert all(str(models) not in text for text in texts)
    with storage.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "artifact")).all()
    assert {alert.details["version"] for alert in alerts} == {2, 3}
    for alert in alerts:
        assert str(models) not in alert.message and str(models) not in json.dumps(alert.details)
        assert "reports not ready (/ready 503)" in alert.message
