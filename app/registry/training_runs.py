"""Runs: every training, backtest and experiment leaves a row with what went in, what came out and how long.

A run is opened as "running" before the work starts (so a crash still leaves a trace), and closed as
"finished" with its metrics and artifact, or "failed" with the error. `track_run` wraps that in a
context manager; `record_trained_artifact` records a training that already happened elsewhere (the
core's `flask train`) from the artifact's metadata.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from app.config import PROJECT_ROOT
from app.forecasting.data import Dataset
from app.jsonable import jsonable
from app.registry import events
from app.storage import Run, Storage, get_row, utcnow

log = logging.getLogger(__name__)

RUN_TYPES = ("train", "backtest", "experiment")
MAX_ERROR_CHARS = 4000
# Big, per-row parts of a backtest summary that do not belong in a run's metrics column.
_BULKY_METRIC_KEYS = ("predictions", "rows_detail")


@functools.lru_cache(maxsize=1)
def code_version() -> str | None:
    """`git describe --always --dirty` of the project, or None outside a git checkout (e.g. a wheel)."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    described = result.stdout.strip()
    return described[:64] if result.returncode == 0 and described else None


def _as_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return None if stamp is pd.NaT else stamp.date()


def data_window(dataset: Dataset) -> dict[str, Any]:
    """Where the data came from, which weeks it spans and its fingerprint."""
    sales = dataset.sales
    return {
        "data_source": str(dataset.source)[:256],
        "data_fingerprint": dataset.fingerprint(),
        "data_start": _as_date(sales["date"].min()) if len(sales) else None,
        "data_end": _as_date(sales["date"].max()) if len(sales) else None,
    }


def clean_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """A backtest summary as it is stored: JSON-safe, without the per-row bulk."""
    if not metrics:
        return {}
    return jsonable({key: value for key, value in metrics.items() if key not in _BULKY_METRIC_KEYS})


def start_run(
    storage: Storage,
    run_type: str,
    model_kind: str,
    *,
    params: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    data_source: str | None = None,
) -> int:
    """Open a run as "running" and return its id."""
    if run_type not in RUN_TYPES:
        raise ValueError(f"run_type must be one of {', '.join(RUN_TYPES)}, got {run_type!r}")
    window = data_window(dataset) if dataset is not None else {"data_source": (data_source or "")[:256]}
    with storage.session() as session:
        run = Run(
            run_type=run_type,
            model_kind=model_kind,
            status="running",
            params=jsonable(params or {}),
            metrics={},
            code_version=code_version(),
            **window,
        )
        session.add(run)
        session.flush()
        return run.id


def _close(storage: Storage, run_id: int, **values: Any) -> None:
    with storage.session() as session:
        run = get_row(session, Run, run_id)
        if run is None:
            raise LookupError(f"run {run_id} does not exist")
        run.finished_at = utcnow()
        run.duration_s = max((run.finished_at - run.started_at).total_seconds(), 0.0)
        for key, value in values.items():
            setattr(run, key, value)
        payload = training_run_dict(run)
    events.emit(storage, f"run_{payload['status']}", payload)


def finish_run(
    storage: Storage,
    run_id: int,
    *,
    metrics: dict[str, Any] | None = None,
    artifact_path: str | Path | None = None,
    artifact_sha256: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Close a run as finished with its metrics and, for a training, its artifact."""
    values: dict[str, Any] = {"status": "finished", "metrics": clean_metrics(metrics)}
    if artifact_path is not None:
        values["artifact_path"] = str(artifact_path)
        values["artifact_sha256"] = artifact_sha256
    if params is not None:
        values["params"] = jsonable(params)
    _close(storage, run_id, **values)


def fail_run(storage: Storage, run_id: int, error: BaseException | str) -> None:
    """Close a run as failed, keeping the error's type and message."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    _close(storage, run_id, status="failed", error=text[:MAX_ERROR_CHARS])


@dataclass
class RunHandle:
    """What the body of `track_run` fills in; written to the row when the block ends."""

    id: int
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    artifact_path: str | None = None
    artifact_sha256: str | None = None

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        self.metrics.update(metrics)

    def log_artifact(self, artifact: Any) -> None:
        """Take path and sha256 from an ArtifactInfo."""
        self.artifact_path, self.artifact_sha256 = str(artifact.path), artifact.sha256


@contextmanager
def track_run(
    storage: Storage,
    run_type: str,
    model_kind: str,
    *,
    params: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    data_source: str | None = None,
) -> Iterator[RunHandle]:
    """Record the block as a run: finished with what it logged, or failed with the exception (re-raised)."""
    handle = RunHandle(
        start_run(storage, run_type, model_kind, params=params, dataset=dataset, data_source=data_source)
    )
    started = time.perf_counter()
    try:
        yield handle
    except BaseException as error:
        try:
            fail_run(storage, handle.id, error)
        except Exception:  # the database failing too must not hide the original error
            log.exception("could not record the failure of run %s", handle.id)
        raise
    finish_run(
        storage,
        handle.id,
        metrics=handle.metrics,
        artifact_path=handle.artifact_path,
        artifact_sha256=handle.artifact_sha256,
        params=handle.params,
    )
    log.info(
        "run %s (%s %s) finished in %.1fs", handle.id, run_type, model_kind, time.perf_counter() - started
    )


def record_trained_artifact(storage: Storage, artifact: Any, *, run_type: str = "train") -> int:
    """A finished run for a training done elsewhere (the core's CLI), read from the artifact's metadata."""
    metadata = dict(getattr(artifact, "metadata", None) or {})
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    window = metadata.get("training_window") if isinstance(metadata.get("training_window"), dict) else {}
    duration = metadata.get("train_seconds", metadata.get("training_seconds", training.get("seconds")))
    now = utcnow()
    try:
        duration_s = float(duration) if duration is not None else None
    except (TypeError, ValueError):
        duration_s = None
    with storage.session() as session:
        run = Run(
            run_type=run_type,
            model_kind=str(metadata.get("kind", "hgb"))[:16],
            status="finished",
            params=jsonable(metadata.get("params") or {}),
            data_source=str(metadata.get("data_source", metadata.get("source", "")))[:256],
            data_fingerprint=metadata.get("data_fingerprint", metadata.get("fingerprint")),
            data_start=_as_date(window.get("start", metadata.get("data_start"))),
            data_end=_as_date(window.get("end", metadata.get("data_end", metadata.get("origin")))),
            metrics=clean_metrics(metadata.get("backtest") or {}),
            started_at=now - dt.timedelta(seconds=duration_s or 0.0),
            finished_at=now,
            duration_s=duration_s,
            artifact_path=str(artifact.path),
            artifact_sha256=artifact.sha256,
            code_version=metadata.get("code_version") or code_version(),
        )
        session.add(run)
        session.flush()
        payload = training_run_dict(run)
    events.emit(storage, "run_finished", payload)
    return payload["id"]


def training_run_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "run_type": run.run_type,
        "model_kind": run.model_kind,
        "status": run.status,
        "params": run.params or {},
        "data_source": run.data_source,
        "data_fingerprint": run.data_fingerprint,
        "data_start": run.data_start.isoformat() if run.data_start else None,
        "data_end": run.data_end.isoformat() if run.data_end else None,
        "metrics": run.metrics or {},
        "started_at": run.started_at.isoformat(timespec="seconds") if run.started_at else None,
        "finished_at": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        "duration_s": run.duration_s,
        "artifact_path": run.artifact_path,
        "artifact_sha256": run.artifact_sha256,
        "code_version": run.code_version,
        "error": run.error,
    }


def list_training_runs(
    storage: Storage, *, limit: int = 50, run_type: str | None = None, ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """The newest runs first."""
    query = select(Run).order_by(Run.id.desc())
    if run_type:
        query = query.where(Run.run_type == run_type)
    if ids:
        query = query.where(Run.id.in_(ids))
    with storage.session() as session:
        return [training_run_dict(run) for run in session.scalars(query.limit(limit))]


def get_training_run(storage: Storage, run_id: int) -> dict[str, Any] | None:
    with storage.session() as session:
        run = get_row(session, Run, run_id)
        return training_run_dict(run) if run is not None else None
