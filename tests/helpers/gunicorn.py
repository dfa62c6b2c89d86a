"""A real gunicorn (gunicorn.conf.py, two workers) on 127.0.0.1 over a test app's database, for tests that
need several worker processes: it starts, is stopped by its own pid, and answers plain HTTP."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.load import Service, free_port


def database_url(tmp_path: Path) -> str:
    """The SQLite file the served app and the test's own app share (Service.database)."""
    (tmp_path / "instance").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{tmp_path / 'instance' / 'storecast.db'}"


@contextlib.contextmanager
def running(tmp_path: Path, workers: int = 2, **settings: str) -> Iterator[Service]:
    """gunicorn on a free port over tmp_path's instance; `settings` become its environment."""
    (tmp_path / "metrics").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "SECRET_KEY": "test",
        "STORECAST_INSTANCE": str(tmp_path / "instance"),
        "DATABASE_URL": database_url(tmp_path),
        "MODELS_DIR": str(tmp_path / "models"),
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESSLOG": "/dev/null",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "SCHEDULER_ENABLED": "false",
        **settings,
    }
    service = Service(tmp_path, free_port(), env)
    env["PORT"] = str(service.port)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One request on a fresh connection: status, headers and text."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def replace_a_worker(service: Service, timeout: float = 30.0) -> int:
    """Kill one worker with SIGKILL and wait for the master to fork its replacement; its pid."""
    before = service.workers()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = service.workers()
        fresh = [pid for pid in now if pid not in before]
        if len(now) >= len(before) and fresh:
            return fresh[0]
        time.sleep(0.05)
    raise TimeoutError("the master did not replace the killed worker")
