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


def _instance_config(instance: Path, **env: str) -> subprocess.CompletedProcess:
    """scripts/instance_config.sh on `instance`, with no SECRET_KEY or admin token from this environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "STORECAST_ADMIN_TOKEN")}
    return subprocess.run(
        [str(ROOT / "scripts" / "instance_config.sh")],
        cwd=ROOT,
        env={**clean, "STORECAST_INSTANCE": str(instance), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_first_set_up_writes_an_admin_token_once_and_the_app_closes_writes_with_it(tmp_path, monkeypatch):
    from app.factory import create_app

    instance = tmp_path / "instance"
    config = instance / "config.py"
    first = _instance_config(instance)
    assert f"wrote an admin token to {config}: read STORECAST_ADMIN_TOKEN there" in first.stdout
    settings: dict[str, str] = {}
    exec(config.read_text(), settings)  # noqa: S102 - the file the app itself executes
    token = settings["STORECAST_ADMIN_TOKEN"]
    assert len(token) >= 40 and len(settings["SECRET_KEY"]) == 64
    assert config.stat().st_mode & 0o777 == 0o600
    before = config.read_text()
    again = _instance_config(instance)
    assert "admin token" not in again.stdout and "SECRET_KEY" not in again.stdout  # said once
    assert config.read_text() == before

    given = _instance_config(tmp_path / "other", STORECAST_ADMIN_TOKEN="from-env")
    assert "admin token" not in given.stdout  # the environment's token is the one
    assert "STORECAST_ADMIN_TOKEN" not in (tmp_path / "other" / "config.py").read_text()

    monkeypatch.setenv("STORECAST_INSTANCE", str(instance))
    monkeypatch.delenv("STORECAST_ADMIN_TOKEN", raising=False)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "MODELS_DIR": str(tmp_path)})
    app.extensions["storage"].create_all()
    client = app.test_client()
    rows = [{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.0}]
    assert client.post("/api/v1/actuals", json=rows).status_code == 401
    authorised = client.post("/api/v1/actuals", json=rows, headers={"Authorization": f"Bearer {token}"})
    assert authorised.status_code == 200
    app.extensions["storage"].dispose()
