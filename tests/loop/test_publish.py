"""Published forecast runs: 52 weeks for every series, stored once; the CSV is the stored rows."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from app.jobs.tasks import JOBS
from app.loop import publish
from app.loop.history import production_forecaster
from app.monitoring import alerts
from app.storage import ForecastRow, ForecastRun


def test_a_run_stores_52_weeks_for_every_series_and_its_csv_equals_the_rows(loop_app):
    storage = loop_app.extensions["storage"]
    forecaster = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    run = publish.publish(storage, forecaster)
    rows = publish.run_rows(storage, run.id)
    series = int(forecaster.state.has_history.sum())
    assert run.series == series and run.rows == len(rows) == series * 52
    assert run.data_through == forecaster.data_through and run.model_version == forecaster.version
    assert {r["lag"] for r in rows} == set(range(1, 53))
    assert all(
        r["lower_95"] <= r["lower_80"] <= r["prediction"] <= r["upper_80"] <= r["upper_95"] for r in rows
    )

    frame = pd.read_csv(io.StringIO("".join(publish.csv_lines(rows))))
    assert list(frame.columns) == [
        "Store",
        "Dept",
        "Date",
        "lag",
        "prediction",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]
    assert len(frame) == len(rows)
    np.testing.assert_allclose(frame["prediction"], [r["prediction"] for r in rows], atol=0.005)
    assert list(frame["Date"]) == [r["week"].isoformat() for r in rows]

    expected = forecaster.forecast_all()
    np.testing.assert_allclose(sorted(frame["prediction"]), sorted(expected["prediction"]), atol=0.005)


def _old_run(storage, newest: publish.PublishedRun, weeks_before: int) -> int:
    """A stored run of one row whose data_through is `weeks_before` weeks before the newest run's."""
    through = newest.data_through - dt.timedelta(weeks=weeks_before)
    with storage.session() as session:
        run = ForecastRun(model_version="old", data_through=through, lineage=newest.lineage, horizon=52,
                          series=1, rows=1, seconds=0.0)  # fmt: skip
        session.add(run)
        session.flush()
        band = {"prediction": 1.0, "lower_80": 0.0, "upper_80": 2.0, "lower_95": 0.0, "upper_95": 3.0}
        week = through + dt.timedelta(weeks=1)
        session.add(ForecastRow(run_id=run.id, store=1, dept=1, week=week, lag=1, **band))
        return run.id


def test_a_run_csv_streams_in_chunks_of_whole_rows_and_gives_its_connection_back(loop_app, monkeypatch):
    storage = loop_app.extensions["storage"]
    run = publish.publish(storage, production_forecaster(storage, loop_app.config["MODEL_NAME"]))
    monkeypatch.setattr(publish, "CSV_CHUNK_ROWS", 100)
    chunks = list(publish.RunCsv(storage, run.id))
    assert len(chunks) == 1 + -(-run.rows // 100)  # the header, then 100 rows at a time
    assert all(chunk.endswith("\n") for chunk in chunks)
    assert "".join(chunks) == "".join(publish.csv_lines(publish.run_rows(storage, run.id)))
    assert storage.engine.pool.checkedout() == 0

    stopped = publish.RunCsv(storage, run.id)  # a client that goes away after the first rows
    next(stopped), next(stopped)
    assert storage.engine.pool.checkedout() == 1
    stopped.close()
    assert storage.engine.pool.checkedout() == 0


def test_the_retention_job_deletes_runs_whose_weeks_are_all_past_the_retention(loop_app):
    storage = loop_app.extensions["storage"]
    newest = publish.publish(storage, production_forecaster(storage, loop_app.config["MODEL_NAME"]))
    gone = _old_run(storage, newest, 52 + 11)  # its last forecast week: 11 weeks before the newest run's
    kept = _old_run(storage, newest, 52 + 10)  # ... 10 weeks before: still within 10 weeks
    loop_app.config["FORECAST_RUN_RETENTION_WEEKS"] = 0
    assert publish.prune_runs(storage, 0) == []
    assert JOBS["retention"](loop_app.extensions["jobs"], dt.datetime.now())["forecast_runs_deleted"] == []

    loop_app.config["FORECAST_RUN_RETENTION_WEEKS"] = 10
    assert JOBS["retention"](loop_app.extensions["jobs"], dt.datetime.now())["forecast_runs_deleted"] == [
        gone
    ]
    assert [run.id for run in publish.list_runs(storage)] == sorted([newest.id, kept], reverse=True)
    with storage.session() as session:
        counts = dict(
            session.execute(select(ForecastRow.run_id, func.count()).group_by(ForecastRow.run_id)).all()
        )
    assert counts == {newest.id: newest.rows, kept: 1}
    assert publish.prune_runs(storage, 10) == []  # idempotent


def test_publish_command_writes_the_run_as_csv(loop_app, tmp_path):
    out = tmp_path / "run.csv"
    result = loop_app.test_cli_runner().invoke(args=["forecast", "publish", "--out", str(out)])
    assert result.exit_code == 0, result.output
    storage = loop_app.extensions["storage"]
    run = publish.latest_run(storage)
    assert f"forecast run {run.id}" in result.output
    written = pd.read_csv(out)
    assert len(written) == run.rows
    with storage.session() as session:  # the training data's own last week is not an ingested week
        assert alerts.open_alerts(session, "data_quality") == []
    assert out.read_text() == "".join(publish.csv_lines(publish.run_rows(storage, run.id)))


def test_publish_command_without_a_model_says_so(app):
    result = app.test_cli_runner().invoke(args=["forecast", "publish"])
    assert result.exit_code != 0 and "no production model" in result.output
