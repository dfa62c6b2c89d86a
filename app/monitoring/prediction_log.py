"""The prediction log: every prediction served, acknowledged only once it is committed.

This module is the only writer of `prediction_log`. Requests do not each open a transaction (a group
commit): the request that finds no write in progress leads and writes its rows together with those of
every request that arrived meanwhile, in one multi-row INSERT and one commit, then wakes them with their
row ids and passes the lead to the first request that came in while it wrote. A request is answered
only after the transaction holding its rows has committed, so an answered prediction survives a
`kill -9` of the worker; under load the workers take the database's write lock once per batch instead
of once per request, which is what bounded throughput (SQLite serialises writers across processes, and
a writer that finds the lock taken sleeps in its busy handler); alone, a request writes its own rows
with no hand-off to another thread.

The rows go straight into `prediction_log`, not into a file per worker drained into it later: an
answer's prediction_id is the row's id in `prediction_log`, which only the insert there gives, and a
commit to a worker's own SQLite file costs about what a commit to the shared one does, so the drain
would be a second write of every row for nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import orjson
from sqlalchemy import insert

from app.forecasting.prediction import Prediction
from app.jsonable import jsonable
from app.monitoring import metrics
from app.storage import PredictionLog, Storage, utcnow

log = logging.getLogger(__name__)

SOURCES = ("api", "page", "batch", "forecast")
_TABLE = PredictionLog.__table__
_COLUMNS = (
    "created_at", "request_id", "source", "model_version", "store", "dept", "week", "horizon", "inputs",
    "assumed", "cold_start", "prediction", "lower_80", "upper_80", "lower_95", "upper_95", "latency_ms",
)  # fmt: skip


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _values(
    predictions: Iterable[Any], created: dt.datetime, request_id: str, source: str, latency_ms: float
) -> Iterator[tuple[Any, ...]]:
    """Each prediction's log row as a tuple in _COLUMNS order (plain Python values, not yet encoded).

    A Prediction's inputs are plain JSON already (the core makes them so) and go in as they are; a
    dict's are cleaned first. The request path logs every prediction it serves, so this stays lean.
    """
    request_id = str(request_id)[:64]
    latency_ms = float(latency_ms)
    for item in predictions:
        plain = type(item) is Prediction
        data = item.__dict__ if plain else item if isinstance(item, Mapping) else vars(item)
        get = data.get
        yield (
            created, request_id, source, str(get("model_version") or "")[:32],
            int(data["store"]), int(data["dept"]), _as_date(data["week"]), int(get("horizon") or 0),
            (get("inputs") or {}) if plain else jsonable(get("inputs") or {}),
            (get("assumed") or {}) if plain else jsonable(get("assumed") or {}),
            bool(get("cold_start", False)),
            float(data["prediction"]), float(data["lower_80"]), float(data["upper_80"]),
            float(data["lower_95"]), float(data["upper_95"]), latency_ms,
        )  # fmt: skip


def to_rows(
    predictions: Iterable[Any],
    *,
    source: str,
    request_id: str,
    latency_ms: float,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The log rows for a list of core Predictions (or dicts with the same keys), as column: value."""
    values = _values(predictions, now or utcnow(), request_id, source, latency_ms)
    return [dict(zip(_COLUMNS, row, strict=True)) for row in values]


def _sqlite_rows(
    predictions: Iterable[Any], *, source: str, request_id: str, latency_ms: float
) -> list[tuple[Any, ...]]:
    """The log rows ready for the SQLite driver, built straight from the predictions (no dict per row)."""
    values = _values(predictions, utcnow(), request_id, source, latency_ms)
    stamps: dict[dt.datetime, str] = {}
    return [_sqlite_encoded(row, stamps) for row in values]


def _sqlite_encoded(row: tuple[Any, ...], stamps: dict[dt.datetime, str]) -> tuple[Any, ...]:
    """One row in the exact formats SQLAlchemy's SQLite types write (`stamps`: datetimes already written)."""
    created = row[0]
    stamp = stamps.get(created)
    if stamp is None:  # SQLAlchemy's SQLite DATETIME format; isoformat is several times strftime's speed
        stamp = stamps[created] = created.isoformat(sep=" ", timespec="microseconds")
    dumps = orjson.dumps  # ~10x the standard library's speed; SQLAlchemy's JSON type reads it back
    return (
        stamp, *row[1:6], row[6].isoformat(), row[7], dumps(row[8]).decode(), dumps(row[9]).decode(),
        1 if row[10] else 0, *row[11:],
    )  # fmt: skip


def write_rows(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    """One transaction, one INSERT ... RETURNING id for all rows; ids in the order of `rows`.

    On SQLite (the default) the statement goes straight to the driver: a quarter of the cost of
    SQLAlchemy's per-row parameter processing, which matters on the request path. Values are written
    in the exact formats SQLAlchemy's SQLite types use, so the ORM and the jobs read them back as usual.
    Elsewhere SQLAlchemy Core's "insertmanyvalues" sends one multi-row statement. Either way the ids
    come from one statement in one transaction, so they rise in the order of the rows.
    """
    if not rows:
        return []
    if storage.engine.dialect.name == "sqlite":
        return _write_sqlite(storage, rows)
    with storage.engine.begin() as connection:
        result = connection.execute(insert(_TABLE).returning(_TABLE.c.id), rows)
        return sorted(row[0] for row in result)


_SQLITE_CHUNK = 500  # rows per statement: 8,500 parameters, under SQLite's 32,766
_sqlite_statements: dict[int, str] = {}


def _sqlite_statement(count: int) -> str:
    statement = _sqlite_statements.get(count)
    if statement is None:
        group = "(" + ",".join("?" * len(_COLUMNS)) + ")"
        statement = (
            f"INSERT INTO prediction_log ({','.join(_COLUMNS)}) VALUES "
            + ",".join([group] * count)
            + " RETURNING id"
        )
        _sqlite_statements[count] = statement
    return statement


def _sqlite_params(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Column: value rows (to_rows) ready for the SQLite driver."""
    stamps: dict[dt.datetime, str] = {}
    return [_sqlite_encoded(tuple(row[name] for name in _COLUMNS), stamps) for row in rows]


def _write_sqlite(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    encoded = _sqlite_params(rows)
    with _writers_queue(storage):
        connection = storage.engine.raw_connection()
        try:
            return _insert_sqlite(connection, encoded)
        finally:
            connection.close()


@contextlib.contextmanager
def _writers_queue(storage: Storage) -> Iterator[None]:
    """Workers' log writes to one SQLite file, one at a time, woken by the kernel as the lock frees.

    SQLite lets one writer in at a time and makes the others poll: a writer that finds the file locked
    sleeps in its busy handler (milliseconds at a time) and retries, so two busy workers spend most of a
    request asleep. An exclusive flock on a file beside the database queues them instead.
    """
    database = storage.engine.url.database
    if not database or database == ":memory:":
        yield
        return
    handle = _lock_file(f"{database}-log.lock")
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)


_lock_files: dict[tuple[int, str], IO[str]] = {}


def _lock_file(path: str) -> IO[str]:
    """This process's open lock file (opened once, not on every commit; a forked worker opens its own)."""
    key = (os.getpid(), path)
    if key not in _lock_files:
        _lock_files[key] = open(path, "a")  # noqa: SIM115 - held open for the process's lifetime
    return _lock_files[key]


# The log's writes leave the WAL's checkpoints (copying it into the database, and its fsyncs) to a
# thread of their own (_Checkpointer): a commit that crossed SQLite's automatic threshold would do it
# inline, holding the writers' lock and every request waiting on the group commit. The automatic
# checkpoint stays, at a larger size, as a backstop should the thread fall behind.
CHECKPOINT_SECONDS = 1.0
LOG_AUTOCHECKPOINT_PAGES = 10_000  # 40 MB of WAL at the default page size


def _insert_sqlite(connection: Any, rows: list[tuple[Any, ...]]) -> list[int]:
    """One transaction on `connection` (SQLAlchemy's proxy of a DBAPI connection); rolled back on error."""
    total = len(rows)
    ids: list[int] = []
    try:
        cursor = connection.cursor()
        if not connection.info.get("log_autocheckpoint"):
            cursor.execute(f"PRAGMA wal_autocheckpoint={LOG_AUTOCHECKPOINT_PAGES}")
            connection.info["log_autocheckpoint"] = True
        for start in range(0, total, _SQLITE_CHUNK):
            count = min(_SQLITE_CHUNK, total - start)
            params = list(itertools.chain.from_iterable(rows[start : start + count]))
            cursor.execute(_sqlite_statement(count), params)
            ids += sorted(row[0] for row in cursor.fetchall())
        cursor.close()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return ids


GROUP_ROWS = 500  # a request with more rows writes them itself: a big batch must not hold up singles
WAIT_SECONDS = 60.0  # bounded, so a request never waits forever on a stuck leader: it fails loudly


class _Waiter:
    """One request's rows, and what became of them."""

    __slots__ = ("rows", "woken", "lead", "ids", "error")

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.woken = threading.Event()
        self.lead = False
        self.ids: list[int] = []
        self.error: BaseException | None = None


class _Checkpointer(threading.Thread):
    """Checkpoints one SQLite database's WAL every CHECKPOINT_SECONDS, off the request path.

    PASSIVE: it copies what no reader still needs and never blocks a writer or waits for one (two
    workers' checkpointers simply take turns). Durability does not depend on it: with the WAL and
    synchronous=NORMAL a committed transaction survives the process being killed. It stops when its
    storage or its database file is gone.
    """

    def __init__(self, storage: Storage, database: str) -> None:
        super().__init__(name="prediction-log-checkpoint", daemon=True)
        self._storage = weakref.ref(storage)
        self._database = database

    def run(self) -> None:
        connection = sqlite3.connect(self._database, check_same_thread=False)
        try:
            while self._storage() is not None and os.path.exists(self._database):
                time.sleep(CHECKPOINT_SECONDS)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # a busy or vanished file: the next round retries
                    log.debug("prediction log checkpoint: %s", error)
        finally:
            connection.close()


class _OwnConnection:
    """The group commit's own SQLite connection, configured like the pool's and kept open.

    Only the leader writes, one at a time, so one connection serves every group commit of the
    process: no pool check-out, ping and reset-on-return per commit, and a page cache that stays warm
    between commits. A connection that failed is closed and the next commit opens a fresh one.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.proxy: Any = None

    def get(self, storage: Storage) -> Any:
        if self.proxy is None:
            proxy = storage.engine.raw_connection()
            proxy.detach()  # out of the pool: the pool neither counts it nor hands it to anyone else
            self.proxy = proxy
        return self.proxy

    def close(self) -> None:
        proxy, self.proxy = self.proxy, None
        # Never close a connection inherited through fork: SQLite's locks belong to the parent.
        if proxy is not None and self.pid == os.getpid():
            with contextlib.suppress(Exception):
                proxy.close()


class GroupCommitter:
    """The group commit of one process for one storage: many requests' rows, one transaction."""

    def __init__(self, storage: Storage) -> None:
        # Weakly held: the storage's entry in _committers (and with it this committer and its
        # connection) goes when the storage does.
        self._storage = weakref.ref(storage)
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._writing = False
        self._connection: _OwnConnection | None = None
        database = storage.engine.url.database
        if storage.engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._connection = _OwnConnection()
            weakref.finalize(self, self._connection.close)
            _Checkpointer(storage, database).start()

    @property
    def sqlite(self) -> bool:
        """True when write() takes rows encoded for SQLite (_sqlite_rows), not column: value dicts."""
        return self._connection is not None

    def _write_rows(self, rows: list[Any]) -> list[int]:
        storage = self._storage()
        if storage is None:  # cannot happen while a caller holds it; said plainly if it does
            raise RuntimeError("the prediction log's storage is gone")
        if self._connection is None:
            return write_rows(storage, rows)
        with _writers_queue(storage):
            try:
                return _insert_sqlite(self._connection.get(storage), rows)
            except BaseException:
                self._connection.close()
                raise

    def write(self, rows: list[Any]) -> list[int]:
        """The rows' ids, once the transaction holding them has committed (re-raises its error)."""
        me = _Waiter(rows)
        with self._lock:
            self._waiting.append(me)
            if not self._writing:
                self._writing = me.lead = True
        if not me.lead and not me.woken.wait(WAIT_SECONDS):
            with self._lock:
                if not me.lead:
                    self._waiting.remove(me)
                    raise TimeoutError("the prediction log did not commit in time")
        if me.lead:
            self._lead()
        if me.error is not None:
            raise me.error
        return me.ids

    def _lead(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            ids = self._write_rows([row for waiter in batch for row in waiter.rows])
        except BaseException as error:  # noqa: BLE001 - every request of the batch gets the failure
            for waiter in batch:
                waiter.error = error
        else:
            start = 0
            for waiter in batch:
                waiter.ids = ids[start : start + len(waiter.rows)]
                start += len(waiter.rows)
        with self._lock:
            for waiter in batch:
                waiter.lead = False
                waiter.woken.set()
            if self._waiting:
                self._waiting[0].lead = True
                self._waiting[0].woken.set()
            else:
                self._writing = False


_committers: weakref.WeakKeyDictionary[Storage, GroupCommitter] = weakref.WeakKeyDictionary()
_committers_lock = threading.Lock()


def _committer(storage: Storage) -> GroupCommitter:
    """This process's group commit for `storage`; a forked worker makes its own (locks do not fork well)."""
    with _committers_lock:
        committer = _committers.get(storage)
        if committer is None or committer.pid != os.getpid():
            committer = _committers[storage] = GroupCommitter(storage)
        return committer


def log_predictions(
    storage: Storage, predictions: list[Any], *, source: str, request_id: str, latency_ms: float
) -> list[int]:
    """Log every prediction of one request; returns the new row ids once they are committed.

    Raises on a database failure: a prediction that cannot be logged is not silently served
    unlogged (the API turns the error into a 503).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    started = time.perf_counter()
    committer = _committer(storage) if len(predictions) <= GROUP_ROWS else None
    if committer is not None and committer.sqlite:
        rows: list[Any] = _sqlite_rows(
            predictions, source=source, request_id=request_id, latency_ms=latency_ms
        )
        ids = committer.write(rows)
    else:
        rows = to_rows(predictions, source=source, request_id=request_id, latency_ms=latency_ms)
        ids = committer.write(rows) if committer is not None else write_rows(storage, rows)
    metrics.predictions_served(source, len(rows))
    elapsed = (time.perf_counter() - started) * 1000
    if elapsed > 250:
        log.warning("logging %d predictions took %.0f ms (database contention?)", len(rows), elapsed)
    return ids
