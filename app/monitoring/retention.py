"""Prediction log retention: every finished UTC day is rolled up into prediction_daily, and rows older
than the retention are deleted, so the log stops growing with time while daily volumes stay for good.

A day is rolled up once it ended GRACE ago (rows buffered by a worker at midnight land in the right
day), in one INSERT ... SELECT per day; rows are deleted only from days already rolled up, so nothing
counted is ever lost and nothing is counted twice (a day that has rollup rows is never rolled again).
The jobs that read the raw log look back at most PERFORMANCE_ACCURACY_DAYS and DRIFT_WINDOW_HOURS: the
retention never goes below those.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Date, Integer, case, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from app.storage import PredictionDaily, PredictionLog

log = logging.getLogger(__name__)

GRACE = dt.timedelta(hours=1)


def retention_days(config: Mapping[str, Any]) -> int:
    """PREDICTION_LOG_RETENTION_DAYS, raised to what the accuracy and drift jobs read (0: keep all)."""
    days = int(config.get("PREDICTION_LOG_RETENTION_DAYS") or 0)
    if days <= 0:
        return 0
    needed = max(
        int(config.get("PERFORMANCE_ACCURACY_DAYS") or 0),
        -(-int(config.get("DRIFT_WINDOW_HOURS") or 0) // 24),
    )
    if days < needed:
        log.warning(
            "PREDICTION_LOG_RETENTION_DAYS %d is below what the jobs read: keeping %d days", days, needed
        )
    return max(days, needed)


def _day(column: Any, dialect: str) -> Any:
    """The UTC day of a timestamp column: date() on SQLite (CAST AS DATE there is a number)."""
    return func.date(column) if dialect == "sqlite" else cast(column, Date)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def rollup_day(session: Session, day: dt.date) -> int:
    """Roll one day of the log up (replacing any rollup of it); the number of rollup rows written."""
    table = PredictionLog.__table__
    day_of = _day(table.c.created_at, session.get_bind().dialect.name)
    session.execute(delete(PredictionDaily).where(PredictionDaily.day == day))
    query = (
        select(
            day_of,
            table.c.source,
            table.c.model_version,
            func.count(),
            func.sum(case((table.c.cold_start, 1), else_=0)),
            func.sum(table.c.prediction),
            func.sum(table.c.latency_ms),
            func.max(table.c.latency_ms),
        )
        .where(
            table.c.created_at >= _midnight(day), table.c.created_at < _midnight(day + dt.timedelta(days=1))
        )
        .group_by(day_of, table.c.source, table.c.model_version)
    )
    columns = ["day", "source", "model_version", "predictions", "cold_starts", "prediction_sum",
               "latency_ms_sum", "latency_ms_max"]  # fmt: skip
    session.execute(insert(PredictionDaily).from_select(columns, query))
    # Counted, not the INSERT's rowcount: psycopg reports -1 for INSERT ... SELECT.
    return int(session.execute(select(func.count()).where(PredictionDaily.day == day)).scalar_one())


def apply_retention(session: Session, config: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Roll up every finished day not rolled up yet, then delete the rows past the retention."""
    table = PredictionLog.__table__
    through = (now - GRACE).date()  # days before this one are finished
    rolled_until = session.execute(select(func.max(PredictionDaily.day))).scalar()
    if isinstance(rolled_until, str):  # SQLite through a raw date() column
        rolled_until = dt.date.fromisoformat(rolled_until)
    first = (
        rolled_until + dt.timedelta(days=1)
        if rolled_until is not None
        else session.execute(select(func.min(table.c.created_at))).scalar()
    )
    if isinstance(first, dt.datetime):
        first = first.date()
    rolled = []
    day = first
    while day is not None and day < through:
        if rollup_day(session, day):
            rolled.append(day.isoformat())
        day += dt.timedelta(days=1)
    days = retention_days(config)
    deleted = 0
    if days:
        cutoff = _midnight(min(now.date() - dt.timedelta(days=days), through))
        deleted = int(session.execute(delete(PredictionLog).where(table.c.created_at < cutoff)).rowcount or 0)
    log.info(
        "prediction log: %d day(s) rolled up, %d row(s) past %d days deleted", len(rolled), deleted, days
    )
    return {"rolled_up": rolled, "deleted": deleted, "retention_days": days}


def daily_predictions(session: Session, since: dt.date, now: dt.datetime) -> list[dict[str, Any]]:
    """Predictions per UTC day from `since` to today: rolled-up days from the rollup, the rest counted
    from the log (the newest days only), for the long-range volume chart."""
    rolled = session.execute(
        select(PredictionDaily.day, func.sum(PredictionDaily.predictions).cast(Integer))
        .where(PredictionDaily.day >= since)
        .group_by(PredictionDaily.day)
    ).all()
    counts = {_as_date(day): int(n) for day, n in rolled}
    table = PredictionLog.__table__
    start = max(counts) + dt.timedelta(days=1) if counts else since
    day_of = _day(table.c.created_at, session.get_bind().dialect.name)
    recent = session.execute(
        select(day_of, func.count())
        .where(table.c.created_at >= _midnight(start), table.c.created_at <= now)
        .group_by(day_of)
    ).all()
    counts.update({_as_date(day): int(n) for day, n in recent})
    return [{"day": day, "predictions": counts[day]} for day in sorted(counts)]


def _as_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value
