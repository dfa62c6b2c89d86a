"""Prediction log retention: finished days are rolled up exactly (counts, sums, maxima equal the raw
rows'), only rolled-up rows past the retention are deleted, a second run changes nothing, and the daily
volume the long-range chart reads is the same before and after the raw rows are gone."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.jobs.tasks import JobContext, run_job
from app.monitoring import prediction_log, retention
from app.storage import PredictionDaily, PredictionLog
from app.web.pages import monitoring_charts
from tests.helpers.app import make_test_app

NOW = dt.datetime(2026, 3, 20, 0, 30)  # half an hour into a day: the day before is still in its grace
CONFIG = {"PREDICTION_LOG_RETENTION_DAYS": 10, "PERFORMANCE_ACCURACY_DAYS": 5, "DRIFT_WINDOW_HOURS": 24}


def _log_days(storage, days: int) -> pd.DataFrame:
    """Rows over the `days` before NOW (one just before each midnight, to test day edges)."""
    rng = random.Random(5)
    rows = []
    for back in range(days, -1, -1):
        midnight = dt.datetime.combine(NOW.date() - dt.timedelta(days=back), dt.time())
        for k in range(rng.randint(3, 30)):
            created = midnight + dt.timedelta(seconds=rng.randint(0, 86_399) if k else 86_399.999)
            if created > NOW:
                continue
            rows.append(
                {
                    "created_at": created,
                    "request_id": f"r{back}-{k}",
                    "source": rng.choice(["api", "batch", "forecast"]),
                    "model_version": rng.choice(["v1", "v2"]),
                    "store": rng.randint(1, 4),
                    "dept": rng.randint(1, 9),
                    "week": dt.date(2012, 11, 2),
                    "horizon": 1,
                    "inputs": {},
                    "assumed": {},
                    "cold_start": rng.random() < 0.2,
                    "prediction": rng.uniform(-500, 90_000),
                    "lower_80": 0.0,
                    "upper_80": 1.0,
                    "lower_95": 0.0,
                    "upper_95": 1.0,
                    "latency_ms": rng.uniform(0.1, 300),
                }
            )
    prediction_log.write_rows(storage, rows)
    return pd.DataFrame(rows)


def _rollups(storage) -> pd.DataFrame:
    with storage.session() as session:
        rows = session.scalars(select(PredictionDaily)).all()
        return pd.DataFrame(
            [
                {
                    c: getattr(r, c)
                    for c in (
                        "day",
                        "source",
                        "model_version",
                        "predictions",
                        "cold_starts",
                        "prediction_sum",
                        "latency_ms_sum",
                        "latency_ms_max",
                    )
                }
                for r in rows
            ]  # fmt: skip
        )


def test_finished_days_roll_up_exactly_and_only_rolled_rows_past_the_retention_go(tmp_path):
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    raw = _log_days(storage, 30)
    with storage.session() as session:
        volume_before = retention.daily_predictions(session, NOW.date() - dt.timedelta(days=40), NOW)
        result = retention.apply_retention(session, CONFIG, NOW)
    assert result["retention_days"] == 10
    raw["day"] = raw["created_at"].dt.date
    finished = raw[raw["day"] < (NOW - retention.GRACE).date()]
    expected = (
        finished.groupby(["day", "source", "model_version"])
        .agg(
            predictions=("prediction", "size"),
            cold_starts=("cold_start", "sum"),
            prediction_sum=("prediction", "sum"),
            latency_ms_sum=("latency_ms", "sum"),
            latency_ms_max=("latency_ms", "max"),
        )
        .reset_index()
    )
    got = _rollups(storage).sort_values(["day", "source", "model_version"]).reset_index(drop=True)
    assert len(got) == len(expected)
    assert list(got["predictions"]) == list(expected["predictions"])  # counts: exactly
    assert list(got["cold_starts"]) == list(expected["cold_starts"])
    for column in ("prediction_sum", "latency_ms_sum", "latency_ms_max"):
        assert list(got[column]) == pytest.approx(list(expected[column]), rel=1e-12)
    assert result["rolled_up"][-1] == (NOW.date() - dt.timedelta(days=2)).isoformat()

    cutoff = dt.datetime.combine(NOW.date() - dt.timedelta(days=10), dt.time())
    with storage.session() as session:
        kept = session.execute(select(func.count(), func.min(PredictionLog.created_at))).one()
        assert kept[0] == int((raw["created_at"] >= cutoff).sum()) == len(raw) - result["deleted"]
        assert kept[1] >= cutoff
        again = retention.apply_retention(session, CONFIG, NOW)
        volume_after = retention.daily_predictions(session, NOW.date() - dt.timedelta(days=40), NOW)
    assert again["rolled_up"] == [] and again["deleted"] == 0
    assert volume_after == volume_before
    assert sum(day["predictions"] for day in volume_after) == len(raw)

    later = NOW + dt.timedelta(days=1, hours=1)  # yesterday's grace is over: it and today-1 roll up
    with storage.session() as session:
        third = retention.apply_retention(session, CONFIG, later)
    days_with_rows = sorted({d.isoformat() for d in raw["day"] if d >= NOW.date() - dt.timedelta(days=1)})
    assert third["rolled_up"] == days_with_rows and days_with_rows[0] == "2026-03-19"
    assert int(_rollups(storage)["predictions"].sum()) == len(raw)


def test_retention_never_drops_what_the_jobs_still_read_and_zero_keeps_everything(tmp_path):
    assert (
        retention.retention_days(
            {**CONFIG, "PREDICTION_LOG_RETENTION_DAYS": 3, "PERFORMANCE_ACCURACY_DAYS": 90}
        )
        == 90
    )
    assert retention.retention_days({**CONFIG, "PREDICTION_LOG_RETENTION_DAYS": 0}) == 0
    app = make_test_app(tmp_path, PREDICTION_LOG_RETENTION_DAYS=0)
    storage = app.extensions["storage"]
    raw = _log_days(storage, 5)
    outcome = run_job(JobContext(storage, app.config, app.extensions["model_holder"]), "retention", now=NOW)
    assert outcome.ran and outcome.error is None and outcome.result["deleted"] == 0
    with storage.session() as session:
        assert session.execute(select(func.count()).select_from(PredictionLog)).scalar() == len(raw)


def test_the_daily_volume_chart_reads_the_rollup_after_the_raw_rows_are_gone(tmp_path):
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    raw = _log_days(storage, 20)
    with storage.session() as session:
        retention.apply_retention(session, CONFIG, NOW)
        days = retention.daily_predictions(session, NOW.date() - dt.timedelta(days=365), NOW)
    assert sum(day["predictions"] for day in days) == len(raw)
    chart = monitoring_charts.daily_chart(days)
    assert "<svg" in chart and 'aria-label="Predictions per day"' in chart
    assert monitoring_charts.daily_chart([]) is None
