"""Registry fixtures: copies of the small artifact (a test may corrupt its own copy) and admin apps."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from app.registry import versions
from tests.conftest import make_test_app

ADMIN_TOKEN = "s3cret-admin-token"


def copy_artifact(artifact, directory: Path, stem: str):
    """The same trained model under another file name: a distinct artifact with the same hash."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}{artifact.path.suffix}"
    shutil.copyfile(artifact.path, path)
    metadata_path = artifact.metadata_path
    if metadata_path and Path(metadata_path).exists():
        metadata_path = directory / f"{stem}{Path(metadata_path).suffix or '.json'}"
        shutil.copyfile(artifact.metadata_path, metadata_path)
    return dataclasses.replace(artifact, path=path, metadata_path=metadata_path)


def register(app, artifact, stage=None, by="tests", reason=""):
    return versions.register_version(
        app.extensions["storage"],
        app.config["MODEL_NAME"],
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind=artifact.metadata.get("kind", "hgb"),
        metrics=artifact.metadata.get("backtest") or {},
        stage=stage,
        by=by,
        reason=reason,
    )


def flip_bytes(path: Path, count: int = 16) -> None:
    """Corrupt a file in place (the middle bytes inverted), as a bad disk or a tamperer would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def csrf_token(client, url: str = "/models") -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def artifacts(small_artifact, tmp_path):
    """Three distinct artifact files of the small model: v1, v2, v3 material."""
    return [copy_artifact(small_artifact, tmp_path / "models", f"storecast-{i}") for i in (1, 2, 3)]


@pytest.fixture
def registry_app(tmp_path):
    """An app with an admin token configured and an empty registry."""
    return make_test_app(tmp_path, STORECAST_ADMIN_TOKEN=ADMIN_TOKEN)


@pytest.fixture
def storage(registry_app):
    return registry_app.extensions["storage"]
