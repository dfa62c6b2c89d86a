"""`make run`'s serving step: a busy port is named with the way out before anything starts, and the
scheduler never outlives a gunicorn that fails."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def busy_port():
    """A port some other server listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def _run(script: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / script)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_a_busy_port_is_named_before_serving(busy_port):
    result = _run("serve.sh", {"PORT": str(busy_port)})
    assert result.returncode != 0
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert f"PORT={busy_port + 1} make run" in result.stderr
    assert "serving" not in result.stdout and "scheduler" not in result.stdout  # nothing was started


def test_run_refuses_a_busy_port_before_setup(busy_port):
    result = _run("run.sh", {"PORT": str(busy_port)})
    assert result.returncode != 0 and f"port {busy_port}" in result.stderr
    assert "==>" not in result.stdout  # no setup, no training


def test_the_scheduler_stops_when_gunicorn_fails(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PORT": str(port),
        "SECRET_KEY": "test",
        "STORECAST_INSTANCE": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'storecast.db'}",
        "MODELS_DIR": str(tmp_path / "models"),
        "GUNICORN_WORKERS": "not-a-number",  # gunicorn.conf.py fails: gunicorn exits at once
    }
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    result = _run("serve.sh", env)
    assert result.returncode != 0
    pid = int(re.search(r"scheduler started \(pid (\d+)\)", result.stdout).group(1))
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the scheduler outlived gunicorn"
