"""Keep the production Forecaster in memory and follow the registry without reloading per request."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import select

from app.storage import ModelVersion, Storage

if TYPE_CHECKING:
    from app.forecasting.forecaster import Forecaster

log = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """No production model can be served (none registered yet, or its artifact cannot be loaded)."""


class ModelHolder:
    """The worker's production Forecaster: a cheap registry check every few seconds, a swap on change.

    A production version whose artifact fails to load (missing, tampered, wrong library versions)
    is refused; the version already in memory keeps serving and `on_load_failure` is told.
    """

    def __init__(self, storage: Storage, model_name: str, refresh_seconds: float) -> None:
        self.storage = storage
        self.model_name = model_name
        self.refresh_seconds = refresh_seconds
        self.on_load_failure = None  # callable(version_row, error) set by the registry
        self._forecaster: Forecaster | None = None
        self._loaded_id: int | None = None
        self._refused_id: int | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Forecaster:
        if time.monotonic() - self._checked_at >= self.refresh_seconds:
            self.refresh()
        if self._forecaster is None:
            raise ModelUnavailable("no production model is registered yet: run `flask --app wsgi train`")
        return self._forecaster

    def refresh(self) -> None:
        """Load the registry's production version if it differs from the one in memory."""
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                with self.storage.session() as session:
                    row = session.scalars(
                        select(ModelVersion).where(
                            ModelVersion.name == self.model_name, ModelVersion.stage == "production"
                        )
                    ).first()
            except Exception:  # database unreachable: keep serving what we have
                log.exception("registry check failed")
                return
            if row is None or row.id in (self._loaded_id, self._refused_id):
                return
            from app.forecasting.artifacts import ArtifactError, load_forecaster

            try:
                forecaster = load_forecaster(row.artifact_path, expected_sha256=row.artifact_sha256)
            except (ArtifactError, OSError) as error:
                log.error("refusing production version %s: %s", row.version, error)
                self._refused_id = row.id
                if self.on_load_failure is not None:
                    self.on_load_failure(row, error)
                return
            forecaster.version = f"v{row.version}"
            self._forecaster, self._loaded_id = forecaster, row.id
            log.info("serving %s version v%s", self.model_name, row.version)

    @property
    def loaded(self) -> bool:
        return self._forecaster is not None


def init_app(app: Flask) -> None:
    app.extensions["model_holder"] = ModelHolder(
        app.extensions["storage"], app.config["MODEL_NAME"], float(app.config["MODEL_REFRESH_SECONDS"])
    )


def current_forecaster() -> Forecaster:
    """The production Forecaster of this worker; ModelUnavailable when there is none."""
    return current_app.extensions["model_holder"].get()


def storage() -> Storage:
    return current_app.extensions["storage"]
