"""Keep the production Forecaster in memory and follow the registry without reloading per request.

Every worker (gunicorn process, thread pool) has one ModelHolder. At most every MODEL_REFRESH_SECONDS
a request pays for one indexed SELECT of the production version's id and two indexed MAX lookups of
the actuals; only when that id changes is the artifact loaded (hash checked) and swapped in, and only
when actuals arrived is the model rolled forward to the newest week of known sales (same fitted model,
features at the new origin). So a promotion, a rollback or a week of actuals reaches every worker
within a few seconds, with no restart and no per-request reload.

When production's artifact cannot be loaded (missing, corrupted, made with other libraries), a worker
that already holds that same production version keeps serving its copy in memory: it is the version
the registry names, so nothing changes for callers. A worker that holds another version (forked from a
master that loaded an older one, or running when a broken version was promoted) refuses to forecast:
answering with another version than the plan of record would give callers two plans at once. Its
predictions and /ready answer 503 naming both versions until production loads (the file restored, a
rollback or another promotion), so a load balancer takes the worker out and an operator sees why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.forecasting.artifacts import ArtifactError, artifact_problem, load_forecaster
from app.forecasting.forecaster import Forecaster
from app.loop.history import actuals_stamp, roll_forward
from app.storage import ModelVersion, Storage, production_row

log = logging.getLogger(__name__)

# A refused version is tried again this often, in case the file was put back; the callback dedupes alerts.
REFUSED_RETRY_SECONDS = 60.0


class ModelUnavailable(RuntimeError):
    """No production model can be served (none registered yet, or its artifact cannot be loaded)."""


class ModelHolder:
    """The worker's production Forecaster: a cheap registry check every few seconds, a swap on change.

    A production version whose artifact fails to load (missing, tampered, wrong library versions)
    is refused; the version already in memory keeps serving (see the module's docstring for what that
    means for /ready and the answers) and `on_load_failure(version_row, reason)` is told, the reason
    naming files without their server directory (the registry opens an alert).
    """

    def __init__(self, storage: Storage, model_name: str, refresh_seconds: float) -> None:
        self.storage = storage
        self.model_name = model_name
        self.refresh_seconds = refresh_seconds
        self.on_load_failure: Callable[[Any, str], None] | None = None
        self._forecaster: Forecaster | None = None  # the production model rolled to the newest actuals
        self._base: Forecaster | None = None  # the production model as trained
        self._actuals_stamp: tuple | None = None
        self._loaded_id: int | None = None
        self._loaded_version: int | None = None
        self._refused_id: int | None = None
        self._refused_version: int | None = None
        self._refused_at = 0.0
        self._refused_error: str | None = None  # why, naming the artifact's file only
        self._production_version: int | None = None  # the registry's, as of the last check
        self._checked_at: float | None = None  # never checked yet
        self._lock = threading.Lock()

    def get(self) -> Forecaster:
        due = self._checked_at is None or time.monotonic() - self._checked_at >= self.refresh_seconds
        if due or self._forecaster is None:
            # With a model in memory, a thread that finds another one already refreshing serves the
            # current model instead of waiting for the load; with none, it waits for the first load
            # (the scheduler's jobs start together: one found no model while another loaded it).
            self.refresh(wait=self._forecaster is None)
        forecaster = self._forecaster
        if forecaster is None:
            if self._refused_error:
                raise ModelUnavailable(f"the production model cannot be loaded: {self._refused_error}")
            raise ModelUnavailable("no production model is registered yet: run `flask --app wsgi train`")
        if self._refused_error and self._refused_version == self._production_version != self._loaded_version:
            raise ModelUnavailable(
                f"the production model v{self._production_version} cannot be loaded: {self._refused_error}; "
                f"this worker holds v{self._loaded_version} and does not forecast with another version"
            )
        return forecaster

    def _production_row(self) -> ModelVersion | None:
        with self.storage.session() as session:
            return production_row(session, self.model_name)

    def refresh(self, wait: bool = True) -> None:
        """Load the registry's production version if it differs from the one in memory."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            self._checked_at = time.monotonic()
            try:
                row = self._production_row()
            except Exception:  # database unreachable: keep serving what we have
                log.exception("registry check failed")
                return
            self._production_version = None if row is None else row.version
            if row is None:
                return
            if row.id == self._loaded_id:  # e.g. rolled back to what we serve: any refusal is over
                self._refused_id, self._refused_error, self._refused_version = None, None, None
            elif row.id != self._refused_id or time.monotonic() - self._refused_at >= REFUSED_RETRY_SECONDS:
                self._load(row)
            self._follow_actuals()
        finally:
            self._lock.release()

    def _follow_actuals(self) -> None:
        """Roll the loaded model forward when actuals were ingested since the last look."""
        if self._base is None:
            return
        try:
            stamp = actuals_stamp(self.storage)
            if stamp == self._actuals_stamp and self._forecaster is not None:
                return
            rolled = roll_forward(self._base, self.storage)
        except Exception:  # database unreachable or a bad row: keep serving what we have
            log.exception("rolling the model forward to the newest actuals failed")
            return
        self._forecaster, self._actuals_stamp = rolled, stamp
        if rolled is not self._base:
            log.info("serving %s from sales through %s", rolled.version, rolled.data_through)

    def _load(self, row: ModelVersion) -> None:
        try:
            forecaster = load_forecaster(row.artifact_path, expected_sha256=row.artifact_sha256)
        except (ArtifactError, OSError, EOFError, ValueError) as error:
            log.error(  # the server's log may name the whole path; answers and alerts do not
                "refusing %s v%s (%s): %s; this worker holds %s and forecasts with nothing else",
                self.model_name,
                row.version,
                row.artifact_path,
                error,
                f"v{self._loaded_version}" if self._loaded_version else "nothing",
            )
            reason = artifact_problem(error, row.artifact_path)
            self._refused_id, self._refused_at, self._refused_error = row.id, time.monotonic(), reason
            self._refused_version = row.version
            if self.on_load_failure is not None:
                try:
                    self.on_load_failure(row, reason)
                except Exception:  # an alert that cannot be written must not stop serving
                    log.exception("on_load_failure callback failed")
            return
        forecaster.version = f"v{row.version}"
        self._base, self._loaded_id, self._loaded_version = forecaster, row.id, row.version
        self._forecaster, self._actuals_stamp = forecaster, None
        self._refused_id, self._refused_error, self._refused_version = None, None, None
        log.info("serving %s v%s", self.model_name, row.version)

    @property
    def loaded_forecaster(self) -> Forecaster | None:
        """What is in memory now, without a registry check or a load (scrapes and page chrome)."""
        return self._forecaster

    @property
    def loaded(self) -> bool:
        return self._forecaster is not None

    @property
    def version(self) -> str | None:
        """The version this worker serves ("v3"), or None."""
        return f"v{self._loaded_version}" if self._loaded_version is not None else None

    @property
    def production_version(self) -> str | None:
        """The registry's production version as of the last check ("v4"), or None."""
        return f"v{self._production_version}" if self._production_version is not None else None

    def not_production(self) -> str | None:
        """Why this worker does not serve the registry's production version, or None when it does.

        Names versions and the artifact's file, never a server path: /ready shows it to anyone.
        """
        production = self.production_version
        if production is None or production == self.version:
            return None
        serving = f"holds {self.version}" if self.version else "holds no model"
        why = f": {self._refused_error}" if self._refused_error else " (not loaded yet)"
        return f"this worker {serving} but the production version is {production}{why}"

    def mark_check_due(self) -> None:
        """Check the registry on the next request (a forked worker must not trust the master's look)."""
        self._checked_at = None

    def status(self) -> dict[str, Any]:
        """What this worker serves and whether it refused something (for pages and health checks)."""
        return {
            "serving": self.version,
            "production": self.production_version,
            "not_production": self.not_production(),
            "refused": self._refused_error is not None,
            "refused_error": self._refused_error,
            "seconds_since_check": round(time.monotonic() - self._checked_at, 1)
            if self._checked_at
            else None,
            "refresh_seconds": self.refresh_seconds,
            "data_through": self._forecaster.data_through.isoformat() if self._forecaster else None,
            "trained_through": self._base.data_through.isoformat() if self._base else None,
        }
