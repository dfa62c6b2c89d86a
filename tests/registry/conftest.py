"""Registry fixtures: copies of the small artifact (a test may corrupt its own copy) and admin apps."""

from __future__ import annotations

import pytest

from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import make_test_app
from tests.helpers.registry import copy_artifact


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
