"""Storecast: the Flask application factory (wsgi.py, the CLI and the tests call create_app)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import cli, extensions, web
from app.config import PROJECT_ROOT, Config

log = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, storage, model holder, services, blueprints, error handlers and CLI."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("STORECAST_INSTANCE", str(PROJECT_ROOT / "instance")),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(Config.from_environment())
    app.config.from_pyfile("config.py", silent=True)
    if config:
        app.config.update(config)
    _check_secret_key(app)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    Path(app.config["MODELS_DIR"]).mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATA_SOURCE_FILE"):
        app.config["DATA_SOURCE_FILE"] = str(Path(app.instance_path) / "data-source.json")
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'storecast.db'}"
    if app.config["PROXY_COUNT"]:
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)

    extensions.init_app(app)
    web.init_app(app)
    cli.register_cli(app)
    return app


def _check_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if app.debug or app.testing:
        app.config["SECRET_KEY"] = "dev-only-not-secret"
        return
    raise RuntimeError(
        "SECRET_KEY is not set: export SECRET_KEY or put it in instance/config.py "
        "(the README's run command writes one)."
    )
