"""The scheduled jobs (drift, performance, the weekly loop, log retention, alerts, webhook, retrain),
each run once per interval slot.

Each job first claims its interval slot by inserting a JobRun row with the unique (job, slot)
key; whoever loses the race skips. So a job runs exactly once per interval however many
processes run a scheduler (scheduler.py): `flask scheduler` (one process of its own, the recommended
set-up), or a background scheduler in every gunicorn worker when SCHEDULER_ENABLED is on.
Slots are aligned on the epoch (a 15-minute job owns 10:00, 10:15, ...), not on start-up time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.config import train_params
from app.forecasting import reference as seasonal_reference
from app.forecasting.synthetic import load_or_generate
from app.forecasting.training import limit_training_threads
from app.loop import history, publish, retrain, weekly
from app.monitoring import alerts, drift, drift_report, performance, retention, webhook
from app.monitoring.request_log import RequestLogBuffer
from app.registry import data_source
from app.registry.actual_history import dataset_with_actuals
from app.serving.holder import ModelHolder, ModelUnavailable
from app.storage import JobRun, ModelVersion, Storage, batch_statements, production_row, utcnow

log = logging.getLogger(__name__)

# alerts after the jobs whose results it reads; webhook last, to send what they opened or closed
JOB_ORDER = ("drift", "performance", "loop", "retention", "alerts", "webhook")
INTERVAL_SETTINGS = {  # job -> (setting, minutes per unit of the setting)
    "drift": ("DRIFT_INTERVAL_MINUTES", 1),
    "performance": ("PERFORMANCE_INTERVAL_MINUTES", 1),
    "loop": ("LOOP_INTERVAL_MINUTES", 1),
    "alerts": ("ALERT_INTERVAL_MINUTES", 1),
    "webhook": ("WEBHOOK_INTERVAL_MINUTES", 1),
    "retention": ("RETENTION_INTERVAL_HOURS", 60),
    "retrain": ("RETRAIN_INTERVAL_HOURS", 60),
}
START_DELAY_SECONDS = 5  # scheduled runs fire this long after their slot begins
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass
class JobContext:
    """What the jobs read and write: the app's storage, settings and this process' model holder."""

    storage: Storage
    config: Mapping[str, Any]
    holder: ModelHolder
    request_log: RequestLogBuffer | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def interval_minutes(config: Mapping[str, Any], job: str) -> float:
    setting, minutes_per_unit = INTERVAL_SETTINGS[job]
    return float(config[setting]) * minutes_per_unit


def enabled_jobs(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The monitoring jobs, and the retrain job when RETRAIN_ENABLED (off by default)."""
    return (*JOB_ORDER, "retrain") if config.get("RETRAIN_ENABLED") else JOB_ORDER


def slot_for(now: dt.datetime, minutes: float) -> dt.datetime:
    """The start of the interval containing `now`, intervals aligned on the Unix epoch."""
    seconds = int(minutes * 60)
    elapsed = int((now - _EPOCH).total_seconds())
    return _EPOCH + dt.timedelta(seconds=elapsed - elapsed % seconds)


def claim(storage: Storage, job: str, slot: dt.datetime, worker: str) -> int | None:
    """Insert the (job, slot) row; its id when this process won the slot, None when another did."""
    try:
        with storage.session() as session:
            run = JobRun(job=job, slot=slot, started_at=utcnow(), status="running", worker=worker[:64])
            session.add(run)
            session.flush()
            return run.id
    except IntegrityError:
        return None


def _finish(storage: Storage, run_id: int, status: str, error: str | None = None) -> None:
    with storage.session() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, finished_at=utcnow(), error=error[-4000:] if error else None)
        )


@dataclass
class JobOutcome:
    job: str
    slot: dt.datetime
    ran: bool
    run_id: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


# The model the jobs judge: the registry's production version, read without loading the artifact
# (the drift job loads it through the app's ModelHolder for the reference distributions).


def production_model(storage: Storage, name: str) -> ModelVersion | None:
    with storage.session() as session:
        return production_row(session, name)


_reference_cache: dict[str, dict[str, Any]] = {}
_reference_lock = threading.Lock()


def model_reference(ctx: JobContext) -> tuple[str | None, dict[str, Any] | None, Any]:
    """(version, drift reference, forecaster) of the production model.

    The reference saved at training (metadata["reference"]) is used when it has the current format;
    otherwise one is built once per version from the model's own covariate grid and cached.
    """
    try:
        forecaster = ctx.holder.get()
    except ModelUnavailable:
        return None, None, None
    version = str(getattr(forecaster, "version", "") or "")
    metadata = getattr(forecaster, "metadata", {}) or {}
    reference = metadata.get("reference")
    if reference and reference.get("format") == seasonal_reference.FORMAT:
        return version, reference, forecaster
    key = f"{version}:{metadata.get('data_fingerprint', '')}"
    with _reference_lock:
        if key not in _reference_cache:
            log.info("model %s has no current drift reference: built one from its covariates", version)
            _reference_cache[key] = seasonal_reference.build_reference(
                forecaster.covariates, int(forecaster.origin_week)
            )
        return version, _reference_cache[key], forecaster


# Jobs


def run_drift(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    """The drift job: the last DRIFT_WINDOW_HOURS of the log against the production model's reference."""
    version, reference, forecaster = model_reference(ctx)
    if reference is None:
        return {"skipped": "no production model"}
    return drift_report.drift_check(
        ctx.storage,
        reference,
        version=version or "",
        start=now - dt.timedelta(hours=float(ctx.config["DRIFT_WINDOW_HOURS"])),
        end=now,
        settings=drift.DriftSettings.from_config(ctx.config),
        sample_size=int(ctx.config["DRIFT_SAMPLE_SIZE"]),
        covariates=forecaster.covariates,
    )


def run_performance(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    """One performance snapshot for the interval that ends now."""
    storage: Storage = ctx.storage
    if ctx.request_log is not None:
        ctx.request_log.flush()  # this process' buffered request rows belong to the window
    model = production_model(storage, ctx.config["MODEL_NAME"])
    version = f"v{model.version}" if model is not None else None
    start = now - dt.timedelta(minutes=interval_minutes(ctx.config, "performance"))
    with storage.engine.connect() as connection:
        figures = performance.compute_performance(
            connection,
            start,
            now,
            model_version=version,
            backtest_wmae=performance.backtest_wmae_of(model.metrics if model is not None else None),
            accuracy_days=float(ctx.config["PERFORMANCE_ACCURACY_DAYS"]),
        )
    with storage.session() as session:
        snapshot = figures.snapshot()
        snapshot.computed_at = utcnow()
        session.add(snapshot)
        session.flush()
        snapshot_id = snapshot.id
    return {"snapshot_id": snapshot_id, **{k: v for k, v in figures.to_dict().items() if "window" not in k}}


def run_alerts(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    with ctx.storage.session() as session:
        return {"open": alerts.evaluate(session, ctx.config)}


def run_loop(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    """The weekly loop's turn: once a new week of actuals is in, publish from it, score and check."""
    try:
        forecaster = ctx.holder.get()  # rolled to the newest actuals
    except ModelUnavailable:
        return {"skipped": "no production model"}
    return weekly.run_week(ctx.storage, forecaster, weekly.LoopSettings.from_config(ctx.config), now=now)


def run_retention(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    """Roll finished days of the prediction log up and delete rows past PREDICTION_LOG_RETENTION_DAYS;
    delete published forecast runs past FORECAST_RUN_RETENTION_WEEKS."""
    with ctx.storage.session() as session:
        result = retention.apply_retention(session, ctx.config, now)
    weeks = int(ctx.config.get("FORECAST_RUN_RETENTION_WEEKS") or 0)
    return {**result, "forecast_runs_deleted": publish.prune_forecast_runs(ctx.storage, weeks)}


def run_webhook(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    return webhook.deliver_pending(
        ctx.storage,
        ctx.config.get("WEBHOOK_URL"),
        timeout=float(ctx.config["WEBHOOK_TIMEOUT_SECONDS"]),
        now=now,
    )


def run_retrain(ctx: JobContext, now: dt.datetime) -> dict[str, Any]:
    """Refit production's kind on the data plus ingested actuals; promoted only through the loop's gate."""
    if not ctx.config.get("RETRAIN_ENABLED"):
        return {"skipped": "RETRAIN_ENABLED is off"}
    storage, name = ctx.storage, ctx.config["MODEL_NAME"]
    try:
        production = history.production_forecaster(storage, name)
    except LookupError:
        return {"skipped": "no production model"}
    data_dir = ctx.config.get("STORECAST_DATA") or None
    base = load_or_generate(data_dir)
    # other data than the deployment's fails the job (names only: job errors reach the health panel)
    data_source.ensure(
        storage,
        name,
        data_source.Source.of(base, data_dir),
        instance_file=ctx.config.get("DATA_SOURCE_FILE"),
        by="scheduler:retrain",
        public=True,
    )
    dataset = dataset_with_actuals(base, storage)
    with limit_training_threads(int(ctx.config.get("TRAIN_THREADS") or 0)):  # beside the serving workers
        return retrain.retrain_through_gate(
            storage,
            dataset,
            production,
            model_name=name,
            models_dir=ctx.config["MODELS_DIR"],
            kind=str(production.metadata.get("kind", "hgb")),
            params=train_params(ctx.config),
            margin=float(ctx.config["PROMOTION_MARGIN"]),
            holdout_weeks=int(ctx.config["RETRAIN_HOLDOUT_WEEKS"]),
            by="scheduler:retrain",
        )


JOBS: dict[str, Callable[[JobContext, dt.datetime], dict[str, Any]]] = {
    "drift": run_drift,
    "performance": run_performance,
    "loop": run_loop,
    "alerts": run_alerts,
    "webhook": run_webhook,
    "retention": run_retention,
    "retrain": run_retrain,
}


def run_job(ctx: JobContext, job: str, *, now: dt.datetime | None = None, manual: bool = False) -> JobOutcome:
    """Claim the job's slot and run it; a manual run claims a slot of its own (the exact time).

    Under the batch statement limits: a job's scans and deletes may run long, even inside a worker.
    """
    with batch_statements():
        return _run_job(ctx, job, now=now, manual=manual)


def _run_job(ctx: JobContext, job: str, *, now: dt.datetime | None, manual: bool) -> JobOutcome:
    now = now or utcnow()
    slot = now if manual else slot_for(now, interval_minutes(ctx.config, job))
    storage: Storage = ctx.storage
    run_id = claim(storage, job, slot, ("manual " if manual else "") + worker_name())
    if run_id is None:
        log.debug("%s for %s already claimed elsewhere: skipped", job, slot)
        return JobOutcome(job, slot, ran=False)
    try:
        result = JOBS[job](ctx, now)
    except Exception:
        error = traceback.format_exc()
        log.exception("job %s failed", job)
        _finish(storage, run_id, "failed", error)
        return JobOutcome(job, slot, ran=True, run_id=run_id, error=error.strip().splitlines()[-1])
    _finish(storage, run_id, "finished")
    log.info("job %s (%s): %s", job, slot, result)
    return JobOutcome(job, slot, ran=True, run_id=run_id, result=result)


def run_all(ctx: JobContext, *, now: dt.datetime | None = None, manual: bool = True) -> list[JobOutcome]:
    """Every job once: `flask monitor run` (manual) or a catch-up of the current slots (scheduled)."""
    return [run_job(ctx, job, now=now, manual=manual) for job in enabled_jobs(ctx.config)]


def last_runs(storage: Storage, job_names: Sequence[str] = JOB_ORDER) -> dict[str, JobRun | None]:
    """The latest run of each job, for the health panel."""
    with storage.session() as session:
        return {
            job: session.scalars(
                select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1)
            ).first()
            for job in job_names
        }
