"""Web fixtures: an app serving a fake Forecaster (fast, deterministic) next to the real model_app."""

from __future__ import annotations

import pytest

from tests.conftest import make_test_app
from tests.web.fakes import FakeForecaster


def install_fake(app, forecaster=None):
    """Serve `forecaster` from the app's ModelHolder without the registry."""
    holder = app.extensions["model_holder"]
    holder._forecaster = forecaster or FakeForecaster()
    holder.refresh_seconds = 1e9
    holder._checked_at = float("inf")
    return holder._forecaster


@pytest.fixture
def fake_app(tmp_path, monkeypatch):
    from app.web import service

    application = make_test_app(tmp_path, MODEL_REFRESH_SECONDS=1e9)
    fake = install_fake(application)
    monkeypatch.setattr(service, "_forecast_error_type", lambda: fake.error_type)
    application.fake = fake
    yield application
    application.extensions["storage"].dispose()


@pytest.fixture
def fake_client(fake_app):
    return fake_app.test_client()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }
