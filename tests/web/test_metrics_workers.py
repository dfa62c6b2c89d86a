"""/metrics under a real gunicorn with two workers on loopback: a scrape counts every worker's requests
(prometheus-client's multiprocess mode), whichever worker answers it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


@pytest.fixture
def served(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "SECRET_KEY": "metrics-test",
        "STORECAST_INSTANCE": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'storecast.db'}",
        "MODELS_DIR": str(tmp_path / "models"),
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "/dev/null",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "SCHEDULER_ENABLED": "false",
    }
    (tmp_path / "metrics").mkdir()
    flask = Path(sys.executable).with_name("flask")
    subprocess.run(
        [flask, "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    server = subprocess.Popen(
        [GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(f"{base}/api/v1/health")
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(timeout=30)


def _health_count(text: str) -> float:
    found = re.search(
        r'^storecast_http_requests_total\{endpoint="/api/v1/health",method="GET",status="200"\} (\S+)$',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_every_scrape_adds_up_the_requests_of_both_workers(served) -> None:
    for _ in range(40):
        _get(f"{served}/api/v1/health")
    counts = {_health_count(_get(f"{served}/metrics")) for _ in range(6)}
    # 40 plus the start-up probe(s): the same total whichever worker answered each scrape.
    assert len(counts) == 1 and counts.pop() >= 41
