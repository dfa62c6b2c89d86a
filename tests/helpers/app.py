"""Real apps on fresh test databases, and closing their connections after each test."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.factory import create_app
from tests.helpers.database import database_url_for

_open_apps: list[Flask] = []


def make_test_app(tmp_path: Path, **overrides) -> Flask:
    """A real app on a fresh database (SQLite file in tmp_path, or PostgreSQL), schema from the models."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test",
        "DATABASE_URL": overrides.get("DATABASE_URL") or database_url_for(tmp_path),
        "MODELS_DIR": str(tmp_path / "models"),
        "MODEL_REFRESH_SECONDS": 0.0,
        "DATA_SOURCE_FILE": str(tmp_path / "data-source.json"),
        # No admin token unless a test gives one: never the one `make run` wrote to instance/config.py.
        "STORECAST_ADMIN_TOKEN": None,
        **overrides,
    }
    app = create_app(config)
    app.extensions["storage"].create_all()
    _open_apps.append(app)
    return app


def dispose_test_apps() -> None:
    """Close the connections of every app made so far, so PostgreSQL never runs out of them."""
    while _open_apps:
        _open_apps.pop().extensions["storage"].dispose()
