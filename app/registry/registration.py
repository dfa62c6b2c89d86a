"""Every trained artifact becomes a run and a registry version (`flask train`, the retrain job, tests)."""

from __future__ import annotations

import logging
from typing import Any

from app.registry import versions
from app.registry.training_runs import record_trained_artifact
from app.storage import Storage

log = logging.getLogger(__name__)


def register_trained(
    storage: Storage, model_name: str, artifact: Any, *, by: str | None = None, reason: str = "flask train"
) -> dict[str, Any]:
    """Record a finished training run and register its artifact; returns the version as a dict.

    The version goes to production when there is no production version yet or when production was
    trained on other data, otherwise to staging.
    """
    metadata = artifact.metadata or {}
    run_id = record_trained_artifact(storage, artifact)
    version = versions.register_version(
        storage,
        model_name,
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
