"""Commands of a test app run as real processes (`flask --app wsgi ...`) on the app's own database,
for what only a separate process shows: two publishes at once, a kill in the middle of a write."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from tests.helpers.paths import REPO_ROOT

FLASK = Path(sys.executable).with_name("flask")


def flask_env(app: Flask, tmp_path: Path) -> dict[str, str]:
    """The environment under which `flask --app wsgi` opens the test app's database and models."""
    instance = tmp_path / "cli-instance"
    instance.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "SECRET_KEY": "test",
        "STORECAST_INSTANCE": str(instance),
        "DATABASE_URL": app.config["DATABASE_URL"],
        "MODELS_DIR": app.config["MODELS_DIR"],
        "MODEL_NAME": app.config["MODEL_NAME"],
        "SCHEDULER_ENABLED": "false",
        "LOG_LEVEL": "warning",
    }


def start_flask(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(FLASK), "--app", "wsgi", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll `condition` until it holds (True) or the process ends or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.005)
    return False


def stop(process: subprocess.Popen) -> None:
    """Kill a process this test started, if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait(30)
