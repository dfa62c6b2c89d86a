"""Jobs: each runs once per interval however many app instances share the database."""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import func, select

from app.jobs import scheduler as job_scheduler
from app.jobs import tasks as jobs
from app.storage import JobRun, PerformanceSnapshot
from tests.helpers.app import make_test_app


def _runs(storage) -> dict[str, int]:
    with storage.session() as session:
        return dict(session.execute(select(JobRun.job, func.count()).group_by(JobRun.job)).all())


ONCE = {"drift": 1, "performance": 1, "loop": 1, "retention": 1, "alerts": 1, "webhook": 1}


def test_slots_are_aligned_on_the_epoch():
    assert jobs.slot_for(dt.datetime(2024, 5, 1, 10, 14, 59), 15) == dt.datetime(2024, 5, 1, 10, 0)
    assert jobs.slot_for(dt.datetime(2024, 5, 1, 10, 15, 0), 15) == dt.datetime(2024, 5, 1, 10, 15)
    assert jobs.slot_for(dt.datetime(2024, 5, 1, 10, 59), 60) == dt.datetime(2024, 5, 1, 10, 0)


def test_two_app_instances_on_one_database_run_each_job_once_per_interval(tmp_path):
    first, second = make_test_app(tmp_path), make_test_app(tmp_path)
    storage = first.extensions["storage"]
    now = dt.datetime(2030, 1, 1, 12, 3)
    outcomes: list[jobs.JobOutcome] = []

    def run(app, at):
        outcomes.extend(jobs.run_all(app.extensions["jobs"], now=at, manual=False))

    threads = [threading.Thread(target=run, args=(app, now)) for app in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _runs(storage) == ONCE
    assert sum(o.ran for o in outcomes) == len(ONCE) and all(o.error is None for o in outcomes if o.ran)
    with storage.session() as session:
        assert session.execute(select(func.count()).select_from(PerformanceSnapshot)).scalar_one() == 1

    # Later in the same slots: only the webhook (every minute) runs again; then alerts (5 min), ...
    run(second, now + dt.timedelta(seconds=30))
    assert _runs(storage) == ONCE
    run(second, now + dt.timedelta(minutes=1))
    assert _runs(storage) == {**ONCE, "webhook": 2}
    run(first, now + dt.timedelta(minutes=5))
    assert _runs(storage) == {**ONCE, "alerts": 2, "webhook": 3}
    run(second, now + dt.timedelta(minutes=15))
    assert _runs(storage) == {**ONCE, "performance": 2, "alerts": 3, "webhook": 4}
    for app in (first, second):
        app.extensions["storage"].dispose()


def test_background_schedulers_in_two_instances_run_each_job_once(tmp_path):
    """The real APScheduler in two app instances: both fire at start-up, the slot claims keep one run each."""
    apps = [make_test_app(tmp_path) for _ in range(2)]
    schedulers = [job_scheduler.make_scheduler(app.extensions["jobs"], blocking=False) for app in apps]
    for scheduler in schedulers:
        scheduler.start()
    deadline = time.monotonic() + 20
    storage = apps[0].extensions["storage"]
    while time.monotonic() < deadline and sum(_runs(storage).values()) < 5:
        time.sleep(0.1)
    time.sleep(0.5)  # the losers' attempts have happened by now
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)
    assert _runs(storage) == ONCE
    with storage.session() as session:
        statuses = set(session.scalars(select(JobRun.status)))
    assert statuses == {"finished"}
    for app in apps:
        app.extensions["storage"].dispose()


def test_manual_runs_always_run_and_failures_are_recorded(mon_app, monkeypatch):
    runner = mon_app.test_cli_runner()
    result = runner.invoke(args=["monitor", "run"])
    assert result.exit_code == 0, result.output
    assert "drift" in result.output and "no production model" in result.output
    result = runner.invoke(args=["monitor", "run", "--job", "performance"])
    assert result.exit_code == 0
    assert _runs(mon_app.extensions["storage"]) == {**ONCE, "performance": 2}

    def broken(app, now):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(jobs.JOBS, "alerts", broken)
    outcome = jobs.run_job(mon_app.extensions["jobs"], "alerts", manual=True)
    assert outcome.ran and "disk on fire" in outcome.error
    with mon_app.extensions["storage"].session() as session:
        run = session.get(JobRun, outcome.run_id)
    assert run.status == "failed" and "disk on fire" in run.error and run.finished_at is not None


def test_scheduler_enabled_starts_in_the_worker_on_its_first_request(tmp_path):
    app = make_test_app(tmp_path, TESTING=False, SCHEDULER_ENABLED=True, REQUEST_LOG_FLUSH_SECONDS=0)
    assert "monitoring_scheduler" not in app.extensions  # not at import: gunicorn's master must not own it
    app.test_client().get("/api/v1/health")
    scheduler = app.extensions["monitoring_scheduler"]
    try:
        storage = app.extensions["storage"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(_runs(storage).values()) < len(ONCE):
            time.sleep(0.1)
        assert _runs(storage) == ONCE
    finally:
        scheduler.shutdown(wait=True)
        app.extensions["storage"].dispose()


def test_the_retrain_job_is_scheduled_only_when_enabled(tmp_path):
    off = make_test_app(tmp_path / "off")
    on = make_test_app(tmp_path / "on", RETRAIN_ENABLED=True, RETRAIN_INTERVAL_HOURS=168)
    ids = {
        name: {
            job.id for job in job_scheduler.make_scheduler(app.extensions["jobs"], blocking=False).get_jobs()
        }
        for name, app in (("off", off), ("on", on))
    }
    assert ids == {
        "off": set(ONCE),
        "on": {*ONCE, "retrain"},
    }
    assert jobs.interval_minutes(on.config, "retrain") == 168 * 60
    outcome = jobs.run_job(off.extensions["jobs"], "retrain", manual=True)
    assert outcome.result == {"skipped": "RETRAIN_ENABLED is off"}
