"""SQLAlchemy tables and session handling: the product's memory of predictions, runs and alerts.

One module over 500 lines on purpose: it is the schema, every table side by side as the migrations
see it (tests/test_migrations.py compares the two), plus the engine and session they share.

SQLite in the instance folder by default (WAL, busy timeout); any SQLAlchemy URL via DATABASE_URL.
On PostgreSQL every session carries a lock and a statement timeout (StatementLimits), so a locked
table fails fast; jobs and commands run their transactions under longer batch limits.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
MAX_ROW_ID = 2**31 - 1  # INTEGER ids (runs, versions) overflow past this on PostgreSQL: no row has them


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class PredictionLog(Base):
    """One row per prediction served: single, batch row or forecast week."""

    __tablename__ = "prediction_log"
    __table_args__ = (
        Index("ix_prediction_log_created_at", "created_at"),
        Index("ix_prediction_log_key", "store", "dept", "week"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # api, page, batch, forecast
    model_version: Mapped[str] = mapped_column(String(32))
    store: Mapped[int] = mapped_column(Integer)
    dept: Mapped[int] = mapped_column(Integer)
    week: Mapped[dt.date] = mapped_column(Date)
    horizon: Mapped[int] = mapped_column(Integer)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    assumed: Mapped[dict[str, Any]] = mapped_column(JSON)
    cold_start: Mapped[bool] = mapped_column(Boolean, default=False)
    prediction: Mapped[float] = mapped_column(Float)
    lower_80: Mapped[float] = mapped_column(Float)
    upper_80: Mapped[float] = mapped_column(Float)
    lower_95: Mapped[float] = mapped_column(Float)
    upper_95: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)


class PredictionDaily(Base):
    """The prediction log rolled up by UTC day, source and model version: what is left of a day once
    its rows pass PREDICTION_LOG_RETENTION_DAYS (monitoring/retention.py), kept for good. A few rows a
    day whatever the chain's size, so a year of it is a cheap chart."""

    __tablename__ = "prediction_daily"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    predictions: Mapped[int] = mapped_column(Integer)
    cold_starts: Mapped[int] = mapped_column(Integer)
    prediction_sum: Mapped[float] = mapped_column(Float)
    latency_ms_sum: Mapped[float] = mapped_column(Float)
    latency_ms_max: Mapped[float] = mapped_column(Float)


class RequestLog(Base):
    """One row per API or page request: volume, status and latency for the performance job."""

    __tablename__ = "request_log"
    __table_args__ = (Index("ix_request_log_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    endpoint: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)


class ActualSale(Base):
    """Observed weekly sales, ingested after the fact; one row per (store, dept, week)."""

    __tablename__ = "actual_sales"
    __table_args__ = (
        Index("ix_actual_sales_ingested_at", "ingested_at"),
        Index("ix_actual_sales_week", "week"),
    )

    store: Mapped[int] = mapped_column(Integer, primary_key=True)
    dept: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    weekly_sales: Mapped[float] = mapped_column(Float)
    is_holiday: Mapped[bool] = mapped_column(Boolean, default=False)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The dataset lineage of the production model when the row arrived: rows are only scored
    # against forecasts of models trained on the same data (None: ingested before any model).
    lineage: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ActualSaleCorrection(Base):
    """Append-only history of stored weeks of actual sales changed on purpose: old and new values, by whom,
    when and why (a week is never changed silently)."""

    __tablename__ = "actual_sale_corrections"
    __table_args__ = (Index("ix_actual_sale_corrections_key", "store", "dept", "week"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[int] = mapped_column(Integer)
    dept: Mapped[int] = mapped_column(Integer)
    week: Mapped[dt.date] = mapped_column(Date)
    old_weekly_sales: Mapped[float] = mapped_column(Float)
    new_weekly_sales: Mapped[float] = mapped_column(Float)
    old_is_holiday: Mapped[bool] = mapped_column(Boolean)
    new_is_holiday: Mapped[bool] = mapped_column(Boolean)
    corrected_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    corrected_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


class ActualFeature(Base):
    """Observed covariates of a store-week (a features.csv row), ingested as the weeks arrive."""

    __tablename__ = "actual_features"

    store: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    fuel_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    markdown1: Mapped[float | None] = mapped_column(Float, nullable=True)
    markdown2: Mapped[float | None] = mapped_column(Float, nullable=True)
    markdown3: Mapped[float | None] = mapped_column(Float, nullable=True)
    markdown4: Mapped[float | None] = mapped_column(Float, nullable=True)
    markdown5: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpi: Mapped[float | None] = mapped_column(Float, nullable=True)
    unemployment: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_holiday: Mapped[bool] = mapped_column(Boolean, default=False)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ForecastRun(Base):
    """A published forecast run: the plan of record, 52 weeks for every series from the newest data.

    One run per (data week, model version): the unique index makes concurrent publishes of the same
    week store one run, whoever loses the race reads the winner's (app/loop/publish.py).
    """

    __tablename__ = "forecast_runs"
    __table_args__ = (Index("uq_forecast_runs_week_version", "data_through", "model_version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    data_through: Mapped[dt.date] = mapped_column(Date, index=True)
    lineage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    horizon: Mapped[int] = mapped_column(Integer)
    series: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)


class ForecastRow(Base):
    """One published forecast: a series' week, `lag` weeks after the run's data_through."""

    __tablename__ = "forecast_rows"
    __table_args__ = (
        Index("ix_forecast_rows_run_series", "run_id", "store", "dept"),
        Index("ix_forecast_rows_series_lag", "store", "dept", "lag"),  # a series' page, across runs
        Index("ix_forecast_rows_week", "week"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("forecast_runs.id", ondelete="CASCADE"))
    store: Mapped[int] = mapped_column(Integer)
    dept: Mapped[int] = mapped_column(Integer)
    week: Mapped[dt.date] = mapped_column(Date)
    lag: Mapped[int] = mapped_column(Integer)
    prediction: Mapped[float] = mapped_column(Float)
    lower_80: Mapped[float] = mapped_column(Float)
    upper_80: Mapped[float] = mapped_column(Float)
    lower_95: Mapped[float] = mapped_column(Float)
    upper_95: Mapped[float] = mapped_column(Float)
    naive: Mapped[float | None] = mapped_column(Float, nullable=True)  # seasonal naive known at the run


class LagAccuracy(Base):
    """Published forecasts of one week scored against its actuals, per lag bucket (sums, so they add up)."""

    __tablename__ = "lag_accuracy"
    __table_args__ = (UniqueConstraint("week", "bucket", "lineage", name="uq_lag_accuracy_week_bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[dt.date] = mapped_column(Date, index=True)
    bucket: Mapped[str] = mapped_column(String(8))  # a lag bucket ("5-13"); totals: "C:5-13" (accuracy.py)
    lineage: Mapped[str] = mapped_column(String(64), default="")
    rows: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)  # sum of WMAE weights (holiday weeks 5)
    abs_error: Mapped[float] = mapped_column(Float)  # weighted sum of |actual - forecast|
    naive_abs_error: Mapped[float] = mapped_column(Float)  # the same for seasonal naive
    error: Mapped[float] = mapped_column(Float)  # sum of forecast - actual (bias)
    actual: Mapped[float] = mapped_column(Float)  # sum of |actual| (to express bias in percent)
    in_80: Mapped[int] = mapped_column(Integer)
    in_95: Mapped[int] = mapped_column(Integer)
    # Proper scores as sums (null for a week scored before they were kept): interval scores of the 80%
    # and 95% bands, and pinball losses of the 0.1, 0.5 and 0.9 quantiles (the 80% band's ends and the
    # forecast), which over `actual` give the weighted quantile loss.
    interval_score_80: Mapped[float | None] = mapped_column(Float, nullable=True)
    interval_score_95: Mapped[float | None] = mapped_column(Float, nullable=True)
    pinball_10: Mapped[float | None] = mapped_column(Float, nullable=True)
    pinball_50: Mapped[float | None] = mapped_column(Float, nullable=True)
    pinball_90: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def new_event_id() -> str:
    return str(uuid.uuid4())


class AlertDelivery(Base):
    """One webhook notification of an alert opening or closing; retried until delivered.

    Every attempt carries the same event_id, so a receiver that got an attempt the sender counted as
    failed (an answer past the deadline) can drop the repeat.
    """

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_event_id)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # opened, resolved
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending, delivered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class DriftReport(Base):
    """One drift check of a window of logged inputs against the model's reference."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    window_end: Mapped[dt.datetime] = mapped_column(DateTime)
    rows: Mapped[int] = mapped_column(Integer)
    features_drifted: Mapped[int] = mapped_column(Integer)
    features_tested: Mapped[int] = mapped_column(Integer)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)


class DriftResult(Base):
    """The test of one feature (or of the predictions) within a drift report."""

    __tablename__ = "drift_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("drift_reports.id", ondelete="CASCADE"), index=True)
    feature: Mapped[str] = mapped_column(String(64))
    test: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    psi: Mapped[float | None] = mapped_column(Float, nullable=True)
    drifted: Mapped[bool] = mapped_column(Boolean)
    sample_size: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # histograms for the page


class PerformanceSnapshot(Base):
    """Service and accuracy figures for one window of time."""

    __tablename__ = "performance_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    window_end: Mapped[dt.datetime] = mapped_column(DateTime)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requests: Mapped[int] = mapped_column(Integer)
    errors_4xx: Mapped[int] = mapped_column(Integer)
    errors_5xx: Mapped[int] = mapped_column(Integer)
    latency_p50: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p95: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p99: Mapped[float | None] = mapped_column(Float, nullable=True)
    predictions: Mapped[int] = mapped_column(Integer)
    matched_actuals: Mapped[int] = mapped_column(Integer)
    live_wmae: Mapped[float | None] = mapped_column(Float, nullable=True)
    live_mae: Mapped[float | None] = mapped_column(Float, nullable=True)
    bias: Mapped[float | None] = mapped_column(Float, nullable=True)
    coverage_80: Mapped[float | None] = mapped_column(Float, nullable=True)
    coverage_95: Mapped[float | None] = mapped_column(Float, nullable=True)
    backtest_wmae: Mapped[float | None] = mapped_column(Float, nullable=True)


class Alert(Base):
    """A condition an operator should see: opened, acknowledged, resolved."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # drift, degradation, error_rate, artifact
    severity: Mapped[str] = mapped_column(String(16))  # info, warning, critical
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    store: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the series an alert is about
    dept: Mapped[int | None] = mapped_column(Integer, nullable=True)


class JobRun(Base):
    """A scheduled job's claim on one interval: the unique key makes it run once however many claim it."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))
    slot: Mapped[dt.datetime] = mapped_column(DateTime)  # start of the interval this run covers
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, finished, failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str] = mapped_column(String(64))


class Run(Base):
    """One training, backtest or experiment run with its parameters, metrics and artifact."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_type: Mapped[str] = mapped_column(String(16))  # train, backtest, experiment
    model_kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, finished, failed
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_source: Mapped[str] = mapped_column(String(256))
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    data_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    artifact_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ModelVersion(Base):
    """A registered artifact: numbered per model name, in exactly one stage."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    stage: Mapped[str] = mapped_column(String(16))  # staging, production, archived
    artifact_path: Mapped[str] = mapped_column(String(512))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    model_kind: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    data_source: Mapped[str | None] = mapped_column(String(512), nullable=True)
    data_lineage: Mapped[str | None] = mapped_column(String(64), nullable=True)  # Dataset.lineage()


class StageChange(Base):
    """Append-only history: which version went from what stage to what, when, by whom and why."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


class DataSource(Base):
    """Append-only record of the data a deployment forecasts from: the newest row of a model name is the
    current one. Commands that train refuse other data until `flask models switch-data` adds a row."""

    __tablename__ = "data_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # directory, synthetic
    source: Mapped[str] = mapped_column(String(512))  # the directory's path, or the synthetic dataset's name
    lineage: Mapped[str | None] = mapped_column(String(64), nullable=True)  # Dataset.lineage()
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


def parse_row_id(text: str) -> int | None:
    """An id typed by a user (URL, query string, CLI): ASCII digits within the id range, else None."""
    return int(text) if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ROW_ID else None


def get_row(session: Session, model: type[Base], row_id: int) -> Any:
    """session.get for an id from a URL: None, not a database overflow error, for ids no row can have."""
    return session.get(model, row_id) if 1 <= row_id <= MAX_ROW_ID else None


def production_row(session: Session, name: str) -> ModelVersion | None:
    """The version of model `name` in production (the registry keeps at most one)."""
    rows = session.scalars(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.stage == "production")
    ).all()
    if len(rows) > 1:  # cannot happen through the registry; say so loudly if someone wrote the table by hand
        log.error("%s has %d production versions: %s", name, len(rows), [row.version for row in rows])
    return rows[0] if rows else None


# Messages from SQLite and PostgreSQL that mean "busy or unreachable now, retry later", as opposed
# to a programming error (a bad column, a missing table) that must stay a loud 500.
_TRANSIENT_MARKERS = (
    "database is locked",
    "database table is locked",
    "could not connect",
    "connection refused",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "too many clients",
    "lock timeout",
    "canceling statement due to lock timeout",
    "canceling statement due to statement timeout",
)
# PostgreSQL's codes for the same: lock_timeout passed, statement cancelled (statement_timeout), deadlock.
_TRANSIENT_SQLSTATES = frozenset({"55P03", "57014", "40P01"})


def is_transient_database_error(error: BaseException) -> bool:
    """True for a database that is busy (locked) or unreachable, which a retry may cure."""
    cause = getattr(error, "orig", None) or error
    if getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    text = str(cause).lower()
    return any(marker in text for marker in _TRANSIENT_MARKERS)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@dataclass(frozen=True)
class StatementLimits:
    """How long a PostgreSQL statement may wait for a lock, and run in all (0: no limit).

    A request must give up well before the worker timeout, so that a locked table answers 503 with
    Retry-After instead of holding every worker; a job or a command (a publish's inserts, retention's
    deletes, a training's writes) may legitimately run for minutes.
    """

    lock_seconds: float
    statement_seconds: float

    def settings(self) -> dict[str, str]:
        return {
            "lock_timeout": f"{round(self.lock_seconds * 1000)}ms",
            "statement_timeout": f"{round(self.statement_seconds * 1000)}ms",
        }

    def libpq_options(self) -> str:
        """The session defaults, given to the server at connect time (no round trip per transaction)."""
        return " ".join(f"-c {name}={value}" for name, value in self.settings().items())


def statement_limits(config: Mapping[str, Any]) -> tuple[StatementLimits, StatementLimits]:
    """The limits of a request and of a job or command, from the DATABASE_*_TIMEOUT_SECONDS settings."""

    def limits(prefix: str) -> StatementLimits:
        return StatementLimits(
            lock_seconds=float(config.get(f"{prefix}_LOCK_TIMEOUT_SECONDS") or 0),
            statement_seconds=float(config.get(f"{prefix}_STATEMENT_TIMEOUT_SECONDS") or 0),
        )

    return limits("DATABASE"), limits("DATABASE_BATCH")


_batch = ContextVar("storecast_batch_statements", default=False)


@contextmanager
def batch_statements() -> Iterator[None]:
    """Transactions this thread begins inside the block run under the storage's batch limits.

    The jobs and the CLI commands enter it; web requests never do, so they keep the short limits.
    """
    token = _batch.set(True)
    try:
        yield
    finally:
        _batch.reset(token)


def _configure_postgresql(engine: Engine, batch: StatementLimits) -> None:
    settings = list(batch.settings().items())

    @event.listens_for(engine, "begin")
    def _batch_limits(connection: Any) -> None:
        if not _batch.get():
            return
        # set_config(..., true) lasts until the transaction ends: the pooled session keeps its defaults.
        with connection.connection.dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
                [part for setting in settings for part in setting],
            )


def make_engine(
    url: str, limits: StatementLimits | None = None, batch_limits: StatementLimits | None = None
) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite; pre-ping elsewhere, and on
    PostgreSQL the statement limits (none given: the server's, as migrations want)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    connect_args = {}
    if limits is not None and url.startswith("postgresql"):
        connect_args["options"] = limits.libpq_options()
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)
    if batch_limits is not None and url.startswith("postgresql"):
        _configure_postgresql(engine, batch_limits)
    return engine


class Storage:
    """The engine and session factory that a Flask app, a job or a test shares."""

    def __init__(
        self, url: str, limits: StatementLimits | None = None, batch_limits: StatementLimits | None = None
    ) -> None:
        self.url = url
        self.engine = make_engine(url, limits, batch_limits)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def create_all(self) -> None:
        """The schema straight from the models (tests); deployments use the Alembic migrations."""
        Base.metadata.create_all(self.engine)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    def dispose(self) -> None:
        self.engine.dispose()
