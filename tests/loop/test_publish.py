"""Published forecast runs: 52 weeks for every series, stored once per week and model version however
many publish at once (threads, processes); --force replaces; the CSV is the stored rows, and --out
appears whole or not at all."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.jobs.tasks import JOBS
from app.loop import publish
from app.loop.history import production_forecaster
from app.monitoring import alerts
from app.storage import ForecastRow, ForecastRun
from tests.helpers.processes import flask_env, start_flask, stop, wait_for


def test_a_run_stores_52_weeks_for_every_series_and_its_csv_equals_the_rows(loop_app):
    storage = loop_app.extensions["storage"]
    forecaster = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    run = publish.publish(storage, forecaster)
    rows = publish.forecast_run_rows(storage, run.id)
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
    assert "".join(chunks) == "".join(publish.csv_lines(publish.forecast_run_rows(storage, run.id)))
    assert storage.engine.pool.checkedout() == 0

    stopped = publish.RunCsv(storage, run.id)  # a client that goes away after the first rows
    next(stopped), next(stopped)
    assert storage.engine.pool.checkedout() == 1
    stopped.close()
    assert storage.engine.pool.checkedout() == 0


def _cut(storage, reading: publish.RunCsv) -> None:
    """The database connection under a stream goes away (a server restart, a killed backend)."""
    connection = reading._connection
    if connection.dialect.name == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with storage.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    else:
        connection.connection.dbapi_connection.close()


def test_a_stream_cut_by_a_database_error_ends_on_a_whole_row(loop_app, monkeypatch):
    storage = loop_app.extensions["storage"]
    run = publish.publish(storage, production_forecaster(storage, loop_app.config["MODEL_NAME"]))
    monkeypatch.setattr(publish, "CSV_CHUNK_ROWS", 100)
    reading = publish.RunCsv(storage, run.id)
    sent = next(reading) + next(reading)
    _cut(storage, reading)
    with pytest.raises(DBAPIError):
        for chunk in reading:
            sent += chunk
    assert sent.endswith("\n")
    frame = pd.read_csv(io.StringIO(sent))
    assert 100 <= len(frame) < run.rows and not frame.isna().any().any()
    reading.close()
    assert storage.engine.pool.checkedout() == 0


def test_the_retention_job_deletes_runs_whose_weeks_are_all_past_the_retention(loop_app):
    storage = loop_app.extensions["storage"]
    newest = publish.publish(storage, production_forecaster(storage, loop_app.config["MODEL_NAME"]))
    gone = _old_run(storage, newest, 52 + 11)  # its last forecast week: 11 weeks before the newest run's
    kept = _old_run(storage, newest, 52 + 10)  # ... 10 weeks before: still within 10 weeks
    loop_app.config["FORECAST_RUN_RETENTION_WEEKS"] = 0
    assert publish.prune_forecast_runs(storage, 0) == []
    assert JOBS["retention"](loop_app.extensions["jobs"], dt.datetime.now())["forecast_runs_deleted"] == []

    loop_app.config["FORECAST_RUN_RETENTION_WEEKS"] = 10
    assert JOBS["retention"](loop_app.extensions["jobs"], dt.datetime.now())["forecast_runs_deleted"] == [
        gone
    ]
    assert [run.id for run in publish.list_forecast_runs(storage)] == sorted([newest.id, kept], reverse=True)
    with storage.session() as session:
        counts = dict(
            session.execute(select(ForecastRow.run_id, func.count()).group_by(ForecastRow.run_id)).all()
        )
    assert counts == {newest.id: newest.rows, kept: 1}
    assert publish.prune_forecast_runs(storage, 10) == []  # idempotent


def test_publish_command_writes_the_run_as_csv(loop_app, tmp_path):
    out = tmp_path / "run.csv"
    result = loop_app.test_cli_runner().invoke(args=["forecast", "publish", "--out", str(out)])
    assert result.exit_code == 0, result.output
    storage = loop_app.extensions["storage"]
    run = publish.latest_forecast_run(storage, loop_app.config["MODEL_NAME"])
    assert f"forecast run {run.id}" in result.output
    written = pd.read_csv(out)
    assert len(written) == run.rows
    with storage.session() as session:  # the training data's own last week is not an ingested week
        assert alerts.open_alerts(session, "data_quality") == []
    assert out.read_text() == "".join(publish.csv_lines(publish.forecast_run_rows(storage, run.id)))


def test_publish_command_without_a_model_says_so(app):
    result = app.test_cli_runner().invoke(args=["forecast", "publish"])
    assert result.exit_code != 0 and "no production model" in result.output


# one run per (data week, model version)


@contextlib.contextmanager
def writes_held(storage):
    """Another session holding the write lock (reads go on): BEGIN IMMEDIATE on SQLite, an EXCLUSIVE
    table lock on PostgreSQL. Publishes started meanwhile all get past their check for a stored run
    and meet at the insert, as when they race."""
    with storage.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("LOCK TABLE forecast_runs IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()


def _run_count(storage) -> tuple[int, int]:
    with storage.session() as session:
        return (
            session.scalar(select(func.count()).select_from(ForecastRun)),
            session.scalar(select(func.count()).select_from(ForecastRow)),
        )


def test_concurrent_publishes_of_a_week_store_one_run(loop_app, caplog):
    storage, name = loop_app.extensions["storage"], loop_app.config["MODEL_NAME"]
    forecasters = [production_forecaster(storage, name) for _ in range(3)]  # one per publisher
    results: list[publish.PublishedRun | BaseException] = []

    def publisher(forecaster) -> None:
        try:
            results.append(publish.publish(storage, forecaster))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            results.append(error)

    caplog.set_level(logging.INFO, logger="app.loop.publish")
    with writes_held(storage):
        threads = [threading.Thread(target=publisher, args=(f,)) for f in forecasters]
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # every publisher has forecast and waits to store its run
    for thread in threads:
        thread.join(60)

    assert all(isinstance(r, publish.PublishedRun) for r in results), results
    assert sorted(r.outcome for r in results) == [publish.EXISTING, publish.EXISTING, publish.STORED]
    assert len({r.id for r in results}) == 1
    assert _run_count(storage) == (1, results[0].rows)
    assert caplog.text.count("already holds the week") == 2
    # and a later publish of the same week by the same version stores nothing either
    again = publish.publish(storage, forecasters[0])
    assert (again.outcome, again.id) == (publish.EXISTING, results[0].id)
    assert _run_count(storage) == (1, results[0].rows)


def test_force_replaces_the_weeks_run_and_readers_never_see_a_mix(loop_app, monkeypatch):
    storage = loop_app.extensions["storage"]
    forecaster = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    first = publish.publish(storage, forecaster)
    monkeypatch.setattr(publish, "CSV_CHUNK_ROWS", 100)  # the reader below holds its query open
    reading = publish.RunCsv(storage, first.id)
    head = next(reading) + next(reading)

    replaced = publish.publish(storage, forecaster, weeks=4, force=True)  # a shorter horizon: other rows
    assert (replaced.outcome, replaced.id, replaced.horizon) == (publish.REPLACED, first.id, 4)
    assert replaced.rows == first.rows // 13
    assert _run_count(storage) == (1, replaced.rows)

    old = pd.read_csv(io.StringIO(head + "".join(reading)))  # began before the replacement: old rows only
    reading.close()
    assert len(old) == first.rows and old["lag"].max() == 52
    new = pd.read_csv(io.StringIO("".join(publish.RunCsv(storage, first.id))))
    assert len(new) == replaced.rows and new["lag"].max() == 4
    assert publish.get_forecast_run(storage, first.id).horizon == 4


def test_another_versions_run_of_the_same_week_is_its_own(loop_app):
    storage = loop_app.extensions["storage"]
    forecaster = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    mine = publish.publish(storage, forecaster)
    with storage.session() as session:  # the unique key is the database's, not only publish()'s check
        session.add(ForecastRun(model_version=mine.model_version, data_through=mine.data_through,
                                horizon=52, series=0, rows=0, seconds=0.0))  # fmt: skip
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
    forecaster.version = "v99"
    theirs = publish.publish(storage, forecaster)
    assert theirs.outcome == publish.STORED and theirs.id != mine.id


# the publish command as processes


def test_two_publish_commands_at_once_store_one_run(loop_app, tmp_path):
    env = flask_env(loop_app, tmp_path)
    commands = [start_flask(env, "forecast", "publish") for _ in range(2)]
    outputs = []
    for command in commands:
        output, _ = command.communicate(timeout=180)
        outputs.append(output)
        assert command.returncode == 0, output
    storage = loop_app.extensions["storage"]
    runs = publish.list_forecast_runs(storage)
    assert len(runs) == 1 and _run_count(storage) == (1, runs[0].rows)
    assert sum("kept it, nothing new stored" in output for output in outputs) == 1, outputs
    assert "Traceback" not in "".join(outputs)

    forced = loop_app.test_cli_runner().invoke(args=["forecast", "publish", "--force"])
    assert forced.exit_code == 0 and "replacing the week's previous run" in forced.output
    assert [run.id for run in publish.list_forecast_runs(storage)] == [runs[0].id]


def _big_run(storage, forecaster, rows: int) -> publish.PublishedRun:
    """Production's run of its week stored with `rows` rows, so writing its CSV takes a while."""
    frame = pd.DataFrame(
        {
            "store": np.arange(rows) // 52 + 1,
            "dept": 1,
            "date": pd.Timestamp(forecaster.data_through) + pd.to_timedelta(np.arange(rows) % 52 + 1, "W"),
            "lag": np.arange(rows) % 52 + 1,
            **{band: np.full(rows, 1234.5) for band in ("prediction", "lower_80", "upper_80")},
            **{band: np.full(rows, 1234.5) for band in ("lower_95", "upper_95", "naive")},
        }
    )
    with storage.session() as session:
        run = ForecastRun(model_version=str(forecaster.version), data_through=forecaster.data_through,
                          lineage=None, horizon=52, series=rows // 52, rows=rows, seconds=0.0)  # fmt: skip
        session.add(run)
        session.flush()
        publish._bulk_insert(session.connection(), run.id, frame)
        run_id = run.id
    return publish.get_forecast_run(storage, run_id)


def test_a_kill_during_out_leaves_the_previous_file_or_none(loop_app, tmp_path):
    storage = loop_app.extensions["storage"]
    run = _big_run(storage, production_forecaster(storage, loop_app.config["MODEL_NAME"]), 150_000)
    env = flask_env(loop_app, tmp_path)
    out = tmp_path / "plan.csv"
    previous = ",".join(publish.CSV_HEADER) + "\n1,1,2012-11-02,1,5,4,6,3,7\n"

    for before in (previous, None):
        if before is None:
            out.unlink()
        else:
            out.write_text(before)
        command = start_flask(env, "forecast", "publish", "--out", str(out))
        try:  # killed once the CSV is being written (a temporary file beside the target grows)
            writing = wait_for(lambda: any(p.stat().st_size > 1 << 20 for p in tmp_path.glob(".plan.csv.*")),
                               command)  # fmt: skip
            assert writing, command.communicate()[0]
            os.kill(command.pid, signal.SIGKILL)
        finally:
            stop(command)
        if before is None:
            assert not out.exists()
        else:
            assert out.read_text() == before  # the previous complete file, untouched

    finished = start_flask(env, "forecast", "publish", "--out", str(out))
    output, _ = finished.communicate(timeout=300)
    assert finished.returncode == 0 and "kept it" in output, output
    written = pd.read_csv(out)
    assert len(written) == run.rows and written["lag"].max() == 52
    assert out.read_text().endswith("\n")
