"""Optional: mirror runs and versions to MLflow when MLFLOW_TRACKING_URI is set and mlflow is installed.

The database stays the source of truth (serving follows it); MLflow gets a copy for people who
browse experiments there. Runs become MLflow runs in the experiment "storecast-<run_type>", with
params, scalar metrics (and WMAE per horizon bucket) and our ids as tags. Versions become MLflow
model versions of the registered model MODEL_NAME (source = our artifact path); stages are kept as
a "stage" tag, and production as the alias "production" (MLflow 3 has no stages, aliases are unique).
Install with `pip install -r requirements-mlflow.txt`. Mirror failures are logged, never raised.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.registry import events
from app.storage import Storage

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 500


def available() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value


class MlflowMirror:
    """Writes to one tracking URI through an MlflowClient (no global mlflow state is touched)."""

    def __init__(self, tracking_uri: str, model_name: str) -> None:
        from mlflow.tracking import MlflowClient  # optional: requirements-mlflow.txt

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.model_name = model_name
        self._runs: dict[int, str] = {}  # our run id -> MLflow run id

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        if event in ("run_finished", "run_failed"):
            self.mirror_run(payload)
        elif event == "version_registered":
            self.mirror_version(payload)
        elif event == "stage_changed":
            self.mirror_stage(payload)

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        return experiment.experiment_id if experiment else self.client.create_experiment(name)

    def mirror_run(self, run: dict[str, Any]) -> str:
        from mlflow.entities import Metric, Param  # optional: requirements-mlflow.txt

        experiment_id = self._experiment_id(f"{self.model_name}-{run['run_type']}")
        tags = {
            "storecast.run_id": str(run["id"]),
            "storecast.run_type": run["run_type"],
            "storecast.model_kind": run["model_kind"],
            "storecast.status": run["status"],
            "storecast.data_fingerprint": run.get("data_fingerprint") or "",
            "storecast.artifact_sha256": run.get("artifact_sha256") or "",
            "mlflow.source.git.commit": run.get("code_version") or "",
        }
        if run.get("error"):
            tags["storecast.error"] = run["error"][:4000]
        created = self.client.create_run(
            experiment_id, run_name=f"#{run['id']} {run['run_type']} {run['model_kind']}", tags=tags
        )
        mlflow_id = created.info.run_id
        params: dict[str, Any] = {}
        _flatten("", run.get("params") or {}, params)
        params.update(
            {
                "data_source": run.get("data_source"),
                "data_start": run.get("data_start"),
                "data_end": run.get("data_end"),
            }
        )
        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        for key, value in (run.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics.append(Metric(key, float(value), now, 0))
        for bucket, figures in ((run.get("metrics") or {}).get("by_bucket") or {}).items():
            if isinstance(figures, dict) and isinstance(figures.get("wmae"), (int, float)):
                metrics.append(Metric(f"wmae_h{bucket}", float(figures["wmae"]), now, 0))
        if run.get("duration_s") is not None:
            metrics.append(Metric("duration_s", float(run["duration_s"]), now, 0))
        self.client.log_batch(
            mlflow_id,
            metrics=metrics,
            params=[
                Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in params.items() if value is not None
            ],
        )
        self.client.set_terminated(mlflow_id, status="FINISHED" if run["status"] == "finished" else "FAILED")
        self._runs[int(run["id"])] = mlflow_id
        return mlflow_id

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException  # optional: requirements-mlflow.txt

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name, description="Mirrored from the Storecast registry"
            )

    def _find_version(self, version: int) -> Any | None:
        for candidate in self.client.search_model_versions(f"name='{self.model_name}'"):
            if (candidate.tags or {}).get("storecast.version") == str(version):
                return candidate
        return None

    def mirror_version(self, version: dict[str, Any]) -> None:
        self._ensure_model()
        created = self.client.create_model_version(
            self.model_name,
            source=str(version["artifact_path"]),
            run_id=self._runs.get(int(version["run_id"])) if version.get("run_id") else None,
            tags={
                "storecast.version": str(version["version"]),
                "storecast.artifact_sha256": version["artifact_sha256"],
                "stage": version["stage"],
            },
            description=version.get("reason") or None,
        )
        if version["stage"] == "production":
            self.client.set_registered_model_alias(self.model_name, "production", created.version)

    def mirror_stage(self, change: dict[str, Any]) -> None:
        found = self._find_version(int(change["version"]))
        if found is None:
            log.info("MLflow has no mirror of v%s yet; stage change not mirrored", change["version"])
            return
        self.client.set_model_version_tag(self.model_name, found.version, "stage", change["to_stage"])
        if change["to_stage"] == "production":
            self.client.set_registered_model_alias(self.model_name, "production", found.version)


def install(storage: Storage, uri: str | None, model_name: str) -> MlflowMirror | None:
    """Subscribe a mirror to the registry's events when a tracking URI is configured and mlflow importable."""
    if not uri:
        return None
    if not available():
        log.warning(
            "MLFLOW_TRACKING_URI is set but mlflow is not installed: pip install -r requirements-mlflow.txt"
        )
        return None
    try:
        mirror = MlflowMirror(str(uri), model_name)
    except Exception:  # noqa: BLE001 - a bad URI must not stop the app
        log.exception("MLflow mirror disabled: cannot open %s", uri)
        return None
    events.subscribe(storage, mirror)
    log.info("mirroring runs and versions to MLflow at %s", uri)
    return mirror
