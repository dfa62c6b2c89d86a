"""Storecast: the Flask application factory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app.config import PROJECT_ROOT, Config
from app.storage import Storage

log = logging.getLogger(__name__)

# Every state-changing form post carries a token; the JSON API is exempt (bearer tokens guard it).
csrf = CSRFProtect()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, storage, model holder, blueprints, error handlers and CLI."""
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
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'storecast.db'}"
    app.extensions["storage"] = Storage(app.config["DATABASE_URL"])

    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)

    csrf.init_app(app)
    from app import security

    security.init_app(app)  # response headers; a locked database answers 503

    from app import serving

    serving.init_app(app)

    from app.monitoring import init_app as init_monitoring
    from app.registry import init_app as init_registry
    from app.web import init_app as init_web

    init_web(app)
    init_registry(app)
    init_monitoring(app)

    from app import cli, migrate
    from app.loop import cli as loop_cli

    cli.register_cli(app)
    loop_cli.register_cli(app)
    migrate.register_cli(app)
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
