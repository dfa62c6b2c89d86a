"""Published forecast runs: the plan of record, 52 weeks for every series from the newest data.

A run is computed once, stored (forecast_runs, forecast_rows) and then only read: its CSV, a series'
forecasts and the lag scoring all come from the stored rows, so what was published is what is judged.
There is one run per (data week, model version) (a unique index): a second publish of the same week
returns the stored run, however many processes publish at once; only `force` replaces it. "The latest
run" means one thing everywhere: the newest run of the registry's production version (latest_forecast_run).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import IO, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.forecasting.engine import LOCAL, Engine, ModelSource, forecast_run
from app.forecasting.forecaster import Forecaster
from app.forecasting.inputs import MAX_HORIZON
from app.forecasting.intervals import IntervalCalibrator
from app.forecasting.prediction import BANDS, quantile_name
from app.loop.history import lineage_of
from app.registry import versions
from app.registry.lineage import artifact_metadata
from app.storage import (
    ActualSale,
    ForecastRow,
    ForecastRun,
    Storage,
    get_row,
    is_transient_database_error,
    utcnow,
)

log = logging.getLogger(__name__)

CSV_HEADER = ["Store", "Dept", "Date", "lag", *BANDS]
_ROW_COLUMNS = ("store", "dept", "week", "lag", *BANDS)
_INSERT_CHUNK = 50_000
CSV_CHUNK_ROWS = 5_000  # rows read from the database and formatted at a time while a CSV streams
# How long a publish keeps retrying while another one holds the write lock (SQLite) or the same key
# (PostgreSQL): a large chain's run takes minutes to write.
STORE_RETRY_SECONDS = 600.0

STORED, EXISTING, REPLACED = "stored", "existing", "replaced"


@dataclass
class PublishedRun:
    id: int
    created_at: dt.datetime
    model_version: str
    data_through: dt.date
    lineage: str | None
    horizon: int
    series: int
    rows: int
    seconds: float
    # what publish() did: stored a new run, found the week's run already stored, or replaced it (force)
    outcome: str = STORED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "model_version": self.model_version,
            "data_through": self.data_through.isoformat(),
            "lineage": self.lineage,
            "horizon": self.horizon,
            "series": self.series,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def _published(run: ForecastRun) -> PublishedRun:
    return PublishedRun(
        run.id,
        run.created_at,
        run.model_version,
        run.data_through,
        run.lineage,
        run.horizon,
        run.series,
        run.rows,
        run.seconds,
    )


def publish(
    storage: Storage,
    forecaster: Forecaster,
    *,
    weeks: int = MAX_HORIZON,
    now: dt.datetime | None = None,
    engine: Engine = LOCAL,
    source: ModelSource | None = None,
    force: bool = False,
) -> PublishedRun:
    """Forecast every series `weeks` ahead from the forecaster's origin on `engine` and store the run,
    once per (data week, model version).

    When the week is already published by this version, the stored run comes back (outcome
    "existing") and nothing is computed; a publish that loses a race to another one returns the
    winner's run the same way. `force` replaces the stored run's rows in one transaction (outcome
    "replaced", same id): readers see the old rows or the new ones, never a mix.
    `source` (history.rolled_production) lets Dask workers load the registered artifact themselves.
    """
    version, through = str(forecaster.version), forecaster.data_through
    if not force and (existing := find_forecast_run(storage, through, version)) is not None:
        return _kept(existing)
    started = time.perf_counter()
    frame = forecast_run(forecaster, weeks, engine, source)
    computed = time.perf_counter() - started
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    conflicts = 0
    while True:
        try:
            published = _store(storage, forecaster, frame, weeks, now or utcnow(), started, force)
            break
        except IntegrityError:  # another publish stored this week first
            if not force and (existing := find_forecast_run(storage, through, version)) is not None:
                return _kept(existing)
            conflicts += 1  # a forced publish racing another one; anything else is no race: raise
            if conflicts > 3 or time.monotonic() > deadline:
                raise
        except OperationalError as error:  # the database is busy writing another run: wait for it
            if not is_transient_database_error(error) or time.monotonic() > deadline:
                raise
            if not force and (existing := find_forecast_run(storage, through, version)) is not None:
                return _kept(existing)
            log.info("database busy while storing the run of %s (%s): retrying", through, version)
        time.sleep(0.2)
    log.info(
        "%s forecast run %d: %d rows from %s (%s) in %.1fs (%.1fs computing on %s)",
        published.outcome,
        published.id,
        published.rows,
        published.data_through,
        published.model_version,
        published.seconds,
        computed,
        engine.kind,
    )
    return published


def _kept(run: PublishedRun) -> PublishedRun:
    log.info(
        "forecast run %d already holds the week from %s of %s: kept (force replaces it)",
        run.id,
        run.data_through,
        run.model_version,
    )
    return replace(run, outcome=EXISTING)


def _store(
    storage: Storage,
    forecaster: Forecaster,
    frame: pd.DataFrame,
    weeks: int,
    now: dt.datetime,
    started: float,
    force: bool,
) -> PublishedRun:
    """The run and its rows in one transaction.

    The run's row is written before its forecast rows, so a publish racing for the same key fails
    (or waits for the winner) before writing any of them. `force` keeps the stored run's id and
    replaces its rows and figures: the run is locked first (FOR UPDATE), so two forced publishes of
    one week take turns instead of leaving both their rows under it.
    """
    version, through = str(forecaster.version), forecaster.data_through
    figures = {
        "created_at": now,
        "lineage": lineage_of(forecaster),
        "horizon": weeks,
        "series": len(frame) // weeks,  # forecast_all gives every series `weeks` rows
        "rows": len(frame),
        "seconds": 0.0,
    }
    with storage.session() as session:
        run = None
        if force:
            run = session.scalars(
                select(ForecastRun)
                .where(ForecastRun.data_through == through, ForecastRun.model_version == version)
                .with_for_update()
            ).first()
        if run is None:
            run = ForecastRun(model_version=version, data_through=through, **figures)
            session.add(run)
            session.flush()
            outcome = STORED
        else:
            session.execute(delete(ForecastRow).where(ForecastRow.run_id == run.id))
            for name, value in figures.items():
                setattr(run, name, value)
            outcome = REPLACED
        _bulk_insert(session.connection(), run.id, frame)
        run.seconds = time.perf_counter() - started
        session.flush()
        return replace(_published(run), outcome=outcome)


def _bulk_insert(connection: Connection, run_id: int, frame: pd.DataFrame) -> None:
    """The run's rows by the fastest path each database has: COPY on PostgreSQL, the driver's
    executemany on SQLite (the ORM's bulk insert took 7.6 s of a 15 s publish for 169,000 rows)."""
    names = ["run_id", *_ROW_COLUMNS, "naive"]
    columns = [
        [run_id] * len(frame),
        frame["store"].tolist(),
        frame["dept"].tolist(),
        frame["date"].dt.strftime("%Y-%m-%d").tolist(),
        frame["lag"].tolist(),
        *(frame[c].tolist() for c in (*BANDS, "naive")),
    ]
    rows = list(zip(*columns, strict=True))
    table = ForecastRow.__tablename__
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" if connection.dialect.paramstyle == "qmark" else "%s" for _ in names)
    for start in range(0, len(rows), _INSERT_CHUNK):
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows[start : start + _INSERT_CHUNK]
        )


def prune_forecast_runs(storage: Storage, retention_weeks: int) -> list[int]:
    """Delete the runs whose every forecast week (data_through + horizon) lies more than `retention_weeks`
    weeks before the newest run's data_through; their ids (0 weeks: keep every run).

    Measured on the runs themselves, not the clock, so a replay or a paused loop deletes nothing more.
    Every week up to `retention_weeks` back keeps all the runs that forecast it: its accuracy by lag can
    be scored again, and the tracking signal's recent lag-1 forecasts stay. Scores already made stay in
    lag_accuracy for good.
    """
    if retention_weeks <= 0:
        return []
    with storage.session() as session:
        newest = session.scalar(select(func.max(ForecastRun.data_through)))
        if newest is None:
            return []
        cutoff = newest - dt.timedelta(weeks=retention_weeks)
        runs = session.execute(  # a run's horizon is at least a week: only runs from before the cutoff
            select(ForecastRun.id, ForecastRun.data_through, ForecastRun.horizon).where(
                ForecastRun.data_through < cutoff
            )
        ).all()
        old = sorted(i for i, through, horizon in runs if through + dt.timedelta(weeks=horizon) < cutoff)
    for run_id in old:  # one run a transaction: millions of rows at a large chain
        with storage.session() as session:
            session.execute(delete(ForecastRow).where(ForecastRow.run_id == run_id))
            session.execute(delete(ForecastRun).where(ForecastRun.id == run_id))
    if old:
        log.info("deleted %d forecast run(s) past %d weeks: %s", len(old), retention_weeks, old)
    return old


def list_forecast_runs(storage: Storage, limit: int = 50) -> list[PublishedRun]:
    """Every version's runs, newest first (the runs page labels each with its model version)."""
    with storage.session() as session:
        runs = session.scalars(select(ForecastRun).order_by(ForecastRun.id.desc()).limit(limit))
        return [_published(run) for run in runs]


def get_forecast_run(storage: Storage, run_id: int) -> PublishedRun | None:
    with storage.session() as session:
        run = get_row(session, ForecastRun, run_id)
        return _published(run) if run is not None else None


def find_forecast_run(storage: Storage, data_through: dt.date, model_version: str) -> PublishedRun | None:
    """The run of one data week by one model version (there is at most one)."""
    with storage.session() as session:
        run = session.scalars(
            select(ForecastRun).where(
                ForecastRun.data_through == data_through, ForecastRun.model_version == model_version
            )
        ).first()
        return _published(run) if run is not None else None


def latest_forecast_run(storage: Storage, model_name: str) -> PublishedRun | None:
    """The plan of record: the newest run (by data week) of the registry's production version.

    Every page, CSV, API answer and job that means "the latest run" reads this, so after a promotion
    or a rollback they all serve the same run; runs of other versions stay listed and readable by id.
    None without a production version or before its first run.
    """
    production = versions.production_version(storage, model_name)
    if production is None:
        return None
    query = (
        select(ForecastRun)
        .where(ForecastRun.model_version == production["label"])
        .order_by(ForecastRun.data_through.desc(), ForecastRun.id.desc())
        .limit(1)
    )
    with storage.session() as session:
        run = session.scalars(query).first()
        return _published(run) if run is not None else None


def _rows_query(run_id: int, store: int | None = None, dept: int | None = None) -> Any:
    table = ForecastRow.__table__
    query = select(*(table.c[c] for c in _ROW_COLUMNS)).where(table.c.run_id == run_id)
    if store is not None:
        query = query.where(table.c.store == store)
    if dept is not None:
        query = query.where(table.c.dept == dept)
    return query.order_by(table.c.store, table.c.dept, table.c.week)


def forecast_run_rows(
    storage: Storage, run_id: int, store: int | None = None, dept: int | None = None
) -> list[dict]:
    """The stored rows of a run (one series when store and dept are given), by store, dept and week."""
    with storage.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(_rows_query(run_id, store, dept))]


class QuantilesUnavailable(LookupError):
    """A run's model left no interval shape to read quantiles from (its artifact's metadata is gone)."""


@dataclass(frozen=True)
class RunQuantiles:
    """Quantiles asked of a stored run, each read from a row's stored bands with the interval shape
    of the model version that published it (IntervalCalibrator.band_quantile): a run is never
    forecast anew, and the 0.1 and 0.9 quantiles are its 80% band's ends."""

    levels: tuple[float, ...]
    calibrator: IntervalCalibrator

    def columns(self) -> list[str]:
        return [quantile_name(q) for q in self.levels]

    def values(self, rows: list[Mapping[str, Any]]) -> list[list[str]]:
        """Per row, its quantiles as text. A lower quantile is floored where the stored 95% or 80%
        lower bound was (a series that never sold below 0)."""
        if not rows:
            return []
        frame = pd.DataFrame([{k: row[k] for k in ("lag", *BANDS)} for row in rows]).astype(float)
        prediction, upper_80 = frame["prediction"].to_numpy(), frame["upper_80"].to_numpy()
        floor = np.full(len(frame), -np.inf)
        for lower, upper in (("lower_80", "upper_80"), ("lower_95", "upper_95")):
            floored = frame[lower].to_numpy() > 2 * prediction - frame[upper].to_numpy() + FLOOR_TOLERANCE
            floor = np.where(floored, np.maximum(floor, frame[lower].to_numpy()), floor)
        horizon = frame["lag"].to_numpy(np.int64)
        columns = [
            self.calibrator.band_quantile(q, horizon, prediction, upper_80, floor) for q in self.levels
        ]
        return [[f"{v:.2f}" for v in values] for values in zip(*columns, strict=True)]


# Stored bounds are rounded to the cent: a lower bound this far above its mirror image was floored.
FLOOR_TOLERANCE = 0.02


def run_quantiles(
    storage: Storage, model_name: str, run: PublishedRun, levels: Iterable[float]
) -> RunQuantiles:
    """The quantiles `levels` (QUANTILE_RANGE, sorted and distinct) of a run; QuantilesUnavailable when
    its model version or that version's interval shape is no longer on record."""
    try:
        version = versions.get_version(storage, model_name, run.model_version)
    except versions.RegistryError as error:
        message = f"the run's model {run.model_version} is not registered: {error}"
        raise QuantilesUnavailable(message) from None
    intervals = artifact_metadata(version["artifact_path"]).get("intervals") or {}
    try:
        calibrator = IntervalCalibrator.from_metadata(intervals)
    except (KeyError, TypeError, AttributeError):
        raise QuantilesUnavailable(
            f"the run's model {run.model_version} has no interval shape on record (its artifact's "
            "metadata is missing)"
        ) from None
    return RunQuantiles(tuple(sorted({round(float(q), 4) for q in levels})), calibrator)


def _csv_text(
    rows: Iterable[Mapping[str, Any]], header: bool = False, quantiles: RunQuantiles | None = None
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(CSV_HEADER + (quantiles.columns() if quantiles else []))
    rows = list(rows)
    extra = quantiles.values(rows) if quantiles else [[] for _ in rows]
    writer.writerows(
        [row["store"], row["dept"], row["week"].isoformat(), row["lag"]]
        + [f"{row[band]:.2f}" for band in BANDS]
        + more
        for row, more in zip(rows, extra, strict=True)
    )
    return buffer.getvalue()


def csv_lines(rows: list[dict], quantiles: RunQuantiles | None = None) -> Iterator[str]:
    """Rows already read (forecast_run_rows) as CSV text, header first (Store,Dept,Date,lag,...), with a
    q0.1-style column per asked quantile."""
    yield _csv_text([], header=True, quantiles=quantiles)
    for start in range(0, len(rows), CSV_CHUNK_ROWS):
        yield _csv_text(rows[start : start + CSV_CHUNK_ROWS], quantiles=quantiles)


class RunCsv:
    """A stored run as CSV text, read from the database CSV_CHUNK_ROWS rows at a time as it is
    consumed, so memory stays flat whatever the run's size (a server-side cursor on PostgreSQL).

    The query runs when the object is made, so a database that is down or locked fails before the
    first byte is sent; the connection stays open until the last chunk, an error or close(). Each
    chunk holds whole rows: a stream cut by an error never ends in half a row.
    """

    def __init__(self, storage: Storage, run_id: int, quantiles: RunQuantiles | None = None) -> None:
        self.rows = 0
        self.quantiles = quantiles
        self._connection = storage.engine.connect()
        try:
            self._result: CursorResult = self._connection.execution_options(
                stream_results=True, yield_per=CSV_CHUNK_ROWS
            ).execute(_rows_query(run_id))
        except BaseException:
            self._connection.close()
            raise
        self._chunks = self._generate()

    def _generate(self) -> Iterator[str]:
        try:
            yield _csv_text([], header=True, quantiles=self.quantiles)
            for partition in self._result.mappings().partitions():
                self.rows += len(partition)
                yield _csv_text(partition, quantiles=self.quantiles)
        finally:
            self._connection.close()

    def __iter__(self) -> RunCsv:
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and give the connection back (a client that went away)."""
        self._chunks.close()
        self._connection.close()


def write_csv(storage: Storage, run_id: int, out: IO[str]) -> int:
    """Write a run's rows as CSV to `out`, streamed from the database; returns the number of rows."""
    chunks = RunCsv(storage, run_id)
    try:
        for chunk in chunks:
            out.write(chunk)
    finally:
        chunks.close()
    return chunks.rows


def published_against_actuals(storage: Storage, store: int, dept: int, lag: int = 1) -> list[dict]:
    """One series' published forecasts `lag` weeks ahead beside the actual sales of the same weeks."""
    table, runs = ForecastRow.__table__, ForecastRun.__table__
    query = (
        select(table.c.week, *(table.c[b] for b in BANDS), ActualSale.weekly_sales)
        .join(runs, runs.c.id == table.c.run_id)
        .outerjoin(
            ActualSale,
            (ActualSale.store == table.c.store)
            & (ActualSale.dept == table.c.dept)
            & (ActualSale.week == table.c.week)
            & (ActualSale.lineage == runs.c.lineage),
        )
        .where(table.c.store == store, table.c.dept == dept, table.c.lag == lag)
        .order_by(table.c.week, table.c.run_id.desc())
    )
    with storage.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    seen: set[dt.date] = set()
    out = []
    for row in rows:  # the newest run's forecast for each week
        if row["week"] not in seen:
            seen.add(row["week"])
            out.append({**row, "actual": row.pop("weekly_sales")})
    return out
