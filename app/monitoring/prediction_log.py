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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
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
_FIELDS = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def to_rows(
    predictions: Iterable[Any],
    *,
    source: str,
    request_id: str,
    latency_ms: float,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The log rows for a list of core Predictions (or dicts with the same keys).

    A Prediction's inputs are plain JSON already (the core makes them so) and go in as they are; a
    dict's are cleaned first. The request path logs every prediction it serves, so this stays lean.
    """
    created = now or utcnow()
    request_id = str(request_id)[:64]
    latency_ms = float(latency_ms)
    rows = []
    for item in predictions:
        plain = type(item) is Prediction
        data = item.__dict__ if plain else item if isinstance(item, Mapping) else vars(item)
        get = data.get
        row = {
            "created_at": created,
            "request_id": request_id,
            "source": source,
            "model_version": str(get("model_version") or "")[:32],
            "store": int(data["store"]),
            "dept": int(data["dept"]),
            "week": _as_date(data["week"]),
            "horizon": int(get("horizon") or 0),
            "inputs": (get("inputs") or {}) if plain else jsonable(get("inputs") or {}),
            "assumed": (get("assumed") or {}) if plain else jsonable(get("assumed") or {}),
            "cold_start": bool(get("cold_start", False)),
            "latency_ms": latency_ms,
        }
        for field in _FIELDS:
            row[field] = float(data[field])
        rows.append(row)
    return rows


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


_COLUMNS = (
    "created_at", "request_id", "source", "model_version", "store", "dept", "week", "horizon", "inputs",
    "assumed", "cold_start", "prediction", "lower_80", "upper_80", "lower_95", "upper_95", "latency_ms",
)  # fmt: skip
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


def _write_sqlite(storage: Storage, rows: list[dict[str, Any]]) -> list[int]:
    dumps = orjson.dumps  # ~10x the standard library's speed; SQLAlchemy's JSON type reads it back
    params: list[Any] = []
    stamps: dict[dt.datetime, str] = {}
    for row in rows:
        created = row["created_at"]
        if created not in stamps:
            stamps[created] = created.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
        params += (
            stamps[created],
            row["request_id"], row["source"], row["model_version"], row["store"], row["dept"],
            row["week"].isoformat(), row["horizon"],
            dumps(row["inputs"]).decode(), dumps(row["assumed"]).decode(),
            1 if row["cold_start"] else 0, row["prediction"], row["lower_80"], row["upper_80"],
            row["lower_95"], row["upper_95"], row["latency_ms"],
        )  # fmt: skip
    with _writers_queue(storage):
        return _insert_sqlite(storage, params, len(rows))


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


def _insert_sqlite(storage: Storage, params: list[Any], total: int) -> list[int]:
    width = len(_COLUMNS)
    ids: list[int] = []
    connection = storage.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if not connection.info.get("log_autocheckpoint"):
            cursor.execute(f"PRAGMA wal_autocheckpoint={LOG_AUTOCHECKPOINT_PAGES}")
            connection.info["log_autocheckpoint"] = True
        for start in range(0, total, _SQLITE_CHUNK):
            count = min(_SQLITE_CHUNK, total - start)
            cursor.execute(_sqlite_statement(count), params[start * width : (start + count) * width])
            ids += sorted(row[0] for row in cursor.fetchall())
        cursor.close()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return ids


GROUP_ROWS = 500  # a request with more rows writes them itself: a big batch must not hold up singles
WAIT_SECONDS = 60.0  # bounded, so a request never waits forever on a stuck leader: it fails loudly


class _Waiter:
    """One request's rows, and what became of them."""

    __slots__ = ("rows", "woken", "lead", "ids", "error")

    def __init__(self, rows: list[dict[str, Any]]) -> None:
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


class GroupCommitter:
    """The group commit of one process for one storage: many requests' rows, one transaction."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._writing = False
        database = storage.engine.url.database
        if storage.engine.dialect.name == "sqlite" and database and database != ":memory:":
            _Checkpointer(storage, database).start()

    def write(self, rows: list[dict[str, Any]]) -> list[int]:
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
            ids = write_rows(self.storage, [row for waiter in batch for row in waiter.rows])
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
    rows = to_rows(predictions, source=source, request_id=request_id, latency_ms=latency_ms)
    ids = write_rows(storage, rows) if len(rows) > GROUP_ROWS else _committer(storage).write(rows)
    metrics.predictions_served(source, len(rows))
    elapsed = (time.perf_counter() - started) * 1000
    if elapsed > 250:
        log.warning("logging %d predictions took %.0f ms (database contention?)", len(rows), elapsed)
    return ids
