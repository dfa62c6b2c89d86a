"""Storecast: the Flask application factory (wsgi.py, the CLI and the tests call create_app)."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import cli, web
from app.config import PROJECT_ROOT, Config
from app.jobs.tasks import JobContext
from app.monitoring.alerts import open_artifact_alert
from app.monitoring.request_log import RequestLogBuffer
from app.registry import mlflow_mirror
from app.registry.registration import register_trained
from app.serving.holder import ModelHolder
from app.storage import Storage, statement_limits

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

    storage = Storage(app.config["DATABASE_URL"], *statement_limits(app.config))
    name = app.config["MODEL_NAME"]
    holder = ModelHolder(storage, name, float(app.config["MODEL_REFRESH_SECONDS"]))
    holder.on_load_failure = functools.partial(open_artifact_alert, storage)
    # Tests get no writer thread (it would outlive their temporary database): they flush it themselves.
    flush_seconds = 0.0 if app.testing else float(app.config["REQUEST_LOG_FLUSH_SECONDS"])
    request_log = RequestLogBuffer(storage, flush_seconds)
    app.extensions.update(
        storage=storage,
        model_holder=holder,
        request_log=request_log,
        jobs=JobContext(storage, app.config, holder, request_log),
        on_model_trained=functools.partial(register_trained, storage, name),
        mlflow_mirror=mlflow_mirror.install(storage, app.config.get("MLFLOW_TRACKING_URI"), name),
    )

    web.init_app(app, request_log)
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
