"""A chain-week and more in one batch, under a real gunicorn with two workers on 127.0.0.1: 100,000 rows
answered within the worker timeout, and one answer naming every bad row of a 100,000-row file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.storage import PredictionLog
from tests.helpers.app import make_test_app
from tests.helpers.gunicorn import call, database_url, running
from tests.helpers.registry import register_production

log = logging.getLogger(__name__)
ROWS = 100_000
TIMEOUT = 60  # gunicorn.conf.py's worker timeout (GUNICORN_TIMEOUT)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow  # two 100,000-row batches: about half a minute on 2 busy cores
def test_a_100000_row_batch_is_answered_and_every_bad_row_named(tmp_path, small_artifact):
    app = make_test_app(tmp_path, DATABASE_URL=database_url(tmp_path))
    register_production(app, small_artifact)
    model = app.extensions["model_holder"].get()
    first = model.valid_range()[0]
    series = [(store, dept) for store in model.stores() for dept in model.departments(store)]
    weeks = [(first + dt.timedelta(weeks=k)).date().isoformat() for k in range(12)]
    rows = [
        {
            "store": series[i % len(series)][0],
            "dept": series[i % len(series)][1],
            "date": weeks[i // len(series) % 12],
        }
        for i in range(ROWS)
    ]
    body = json.dumps({"rows": rows}).encode()
    csv_lines = [f"{r['store']},{0 if i % 10 == 0 else r['dept']},{r['date']}" for i, r in enumerate(rows)]
    csv_body = ("Store,Dept,Date\n" + "\n".join(csv_lines) + "\n").encode()

    with running(tmp_path) as service:
        before = {pid: _peak_rss_mb(pid) for pid in service.workers()}
        started = time.monotonic()
        status, headers, text = call(
            service.port, "POST", "/api/v1/predict/batch", body, {"Content-Type": "application/json"}
        )
        seconds = time.monotonic() - started
        assert status == 200, text[:500]
        answer = json.loads(text)
        assert answer["count"] == len(answer["predictions"]) == ROWS and seconds < TIMEOUT
        assert headers["X-Model-Version"] == answer["model_version"] == "v1"
        growth = max(_peak_rss_mb(pid) - before[pid] for pid in before)
        log.info("100,000 rows: %.1f s, worker peak RSS +%.0f MB", seconds, growth)
        assert growth < 500

        started = time.monotonic()
        status, _, text = call(
            service.port, "POST", "/api/v1/predict/batch", csv_body, {"Content-Type": "text/csv"}
        )
        assert status == 422 and time.monotonic() - started < TIMEOUT
        refused = json.loads(text)
        assert refused["error"] == "10,000 invalid rows: nothing was predicted"
        assert [(d["row"], d["line"], d["field"]) for d in refused["details"]] == [
            (i, i + 2, f"rows[{i}].dept") for i in range(0, ROWS, 10)
        ]
    with app.extensions["storage"].session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == ROWS
