"""The `request_log` table's writer: rows of timed requests (the web layer's hooks add them).

Rows are not written per request: they are buffered in the worker and flushed in one multi-row
INSERT every second by a daemon thread (started lazily, so after gunicorn forks), and at exit.
A crash can lose up to a second of request rows; they are service statistics, not the prediction
log, which is written synchronously.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from sqlalchemy import insert

from app.storage import RequestLog, Storage

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_BUFFER = 5000  # rows; beyond this the request that adds one flushes inline


class RequestLogBuffer:
    """Request rows waiting for the next flush; one per app (and so per storage) per process."""

    def __init__(self, storage: Storage, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.storage = storage
        self.flush_seconds = flush_seconds
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= MAX_BUFFER
        if full:
            self.flush()
        elif self._thread is None and self.flush_seconds > 0:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
            self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stopped.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the writer alive; rows stay buffered for the next try
                log.exception("request log flush failed")

    def flush(self) -> int:
        """Write the buffered rows now; returns how many were written."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                with self.storage.engine.begin() as connection:
                    connection.execute(insert(RequestLog.__table__), rows)
            except Exception:
                with self._lock:
                    self._rows[:0] = rows[:MAX_BUFFER]
                raise
            return len(rows)

    def close(self) -> None:
        self._stopped.set()
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - at exit there is nobody left to tell but the log
            log.exception("final request log flush failed")
