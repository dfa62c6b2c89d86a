"""The registry's hooks into the rest of the app: every train registered, every refused artifact alerted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

from app.registry import versions
from app.registry.runs import record_trained_artifact
from app.storage import Storage

log = logging.getLogger(__name__)


def open_artifact_alert(storage: Storage, row: Any, error: BaseException | str) -> None:
    """Open (or refresh) the critical "artifact" alert of a refused version: one per version, however
    many workers refuse the same file (the monitoring package dedupes by kind and key)."""
    from app.monitoring.alerts import open_alert

    version = int(row.version)
    with storage.session() as session:
        open_alert(
            session,
            "artifact",
            "critical",
            f"production version v{version} was refused: its artifact failed to load ({error}). "
            "The previous version keeps serving; roll back or promote another version.",
            {
                "version": version,
                "name": row.name,
                "artifact_path": row.artifact_path,
                "expected_sha256": row.artifact_sha256,
                "error": str(error)[:1000],
            },
            key=f"{row.name}:v{version}",
        )
    log.critical("artifact of %s v%s refused: %s", row.name, version, error)


def make_on_model_trained(app: Flask) -> Callable[..., dict[str, Any]]:
    """The hook the core's `flask train` calls with the ArtifactInfo it wrote.

    It records a finished training run and registers the artifact: production when there is no
    production version yet or when production was trained on other data, otherwise staging.
    Returns the version as a dict.
    """

    def on_model_trained(
        artifact: Any, *, by: str | None = None, reason: str = "flask train", **_: Any
    ) -> dict:
        storage = app.extensions["storage"]
        metadata = artifact.metadata or {}
        run_id = record_trained_artifact(storage, artifact)
        version = versions.register_version(
            storage,
            app.config["MODEL_NAME"],
            artifact_path=artifact.path,
            artifact_sha256=artifact.sha256,
            model_kind=str(metadata.get("kind", "hgb")),
            metrics=metadata.get("backtest") or {},
            run_id=run_id,
            by=by,
            reason=reason,
            data_source=metadata.get("data_source"),
            data_lineage=metadata.get("data_lineage"),
        )
        log.info("training run %s registered as %s (%s)", run_id, version["label"], version["stage"])
        return version

    return on_model_trained


def install(app: Flask) -> None:
    """Set the hooks on the app's extensions and its model holder."""
    storage = app.extensions["storage"]
    app.extensions["on_model_trained"] = make_on_model_trained(app)
    holder = app.extensions.get("model_holder")
    if holder is not None:
        holder.on_load_failure = lambda row, error: open_artifact_alert(storage, row, error)
