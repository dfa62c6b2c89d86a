"""The app's shared state: the storage handle, the production model's holder, the request-log buffer and
the jobs' context, built once by the factory into `app.extensions`.

The web layer and the CLI are two interfaces side by side; both reach this state through the accessors
here, so neither imports the other (a `flask` command never loads a blueprint).
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Flask, current_app

from app.forecasting.forecaster import Forecaster
from app.jobs.tasks import JobContext
from app.monitoring.alerts import open_artifact_alert
from app.monitoring.request_log import RequestLogBuffer
from app.registry import lineage, mlflow_mirror
from app.registry.registration import register_trained
from app.serving.holder import ModelHolder, ModelUnavailable
from app.storage import Storage, statement_limits


def init_app(app: Flask) -> None:
    """Build the shared state from the app's configuration (the factory calls this once)."""
    storage_ = Storage(app.config["DATABASE_URL"], *statement_limits(app.config))
    name = app.config["MODEL_NAME"]
    holder_ = ModelHolder(storage_, name, float(app.config["MODEL_REFRESH_SECONDS"]))
    holder_.on_load_failure = functools.partial(open_artifact_alert, storage_)
    # Tests get no writer thread (it would outlive their temporary database): they flush it themselves.
    flush_seconds = 0.0 if app.testing else float(app.config["REQUEST_LOG_FLUSH_SECONDS"])
    log = RequestLogBuffer(storage_, flush_seconds)
    app.extensions.update(
        storage=storage_,
        model_holder=holder_,
        request_log=log,
        jobs=JobContext(storage_, app.config, holder_, log),
        on_model_trained=functools.partial(register_trained, storage_, name),
        mlflow_mirror=mlflow_mirror.install(storage_, app.config.get("MLFLOW_TRACKING_URI"), name),
    )


def storage() -> Storage:
    return current_app.extensions["storage"]


def holder() -> ModelHolder:
    return current_app.extensions["model_holder"]


def request_log() -> RequestLogBuffer:
    return current_app.extensions["request_log"]


def jobs() -> JobContext:
    return current_app.extensions["jobs"]


def staleness() -> dict[str, Any] | None:
    """Whether production's data ends STALE_AFTER_WEEKS or more before the newest actuals (None: no model)."""
    config = current_app.config
    return lineage.staleness(storage(), config["MODEL_NAME"], int(config["STALE_AFTER_WEEKS"]))


def production_or_none() -> Forecaster | None:
    """The production Forecaster (loaded if this process has none yet), or None when none can be served."""
    try:
        return holder().get()
    except ModelUnavailable:
        return None
