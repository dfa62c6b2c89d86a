"""Registry fixtures: the storage of the admin app (registry_app, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def storage(registry_app):
    return registry_app.extensions["storage"]
