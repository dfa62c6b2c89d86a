"""Service and accuracy figures per window, computed in SQL so a million logged rows stay cheap.

Service (volume, 4xx/5xx, latency percentiles) covers the requests of the window. Accuracy
covers the predictions logged over a longer look-back (actual sales arrive weeks after the
forecast) that have an actual sale for their (store, dept, week), tagged with the data lineage of
the model version that served them (never another dataset's actuals): live WMAE with Kaggle's
weights (holiday weeks, per actual_sales.is_holiday, weigh 5), MAE, bias (mean of prediction -
actual) and the share of actuals inside the 80% and 95% intervals. Each logged prediction counts once: a week
forecast twice was served twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import String, and_, case, cast, exists, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from app.storage import ActualSale, ModelVersion, PerformanceSnapshot, PredictionLog, RequestLog

HOLIDAY_WEIGHT = 5.0
ACCURACY_LOOKBACK_DAYS = 90
LIVE_WINDOW_HOURS = 24.0  # the monitoring page's live request and prediction counts


@dataclass
class Performance:
    window_start: dt.datetime
    window_end: dt.datetime
    model_version: str | None
    requests: int
    errors_4xx: int
    errors_5xx: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    predictions: int
    matched_actuals: int
    live_wmae: float | None
    live_mae: float | None
    bias: float | None
    coverage_80: float | None
    coverage_95: float | None
    backtest_wmae: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def snapshot(self) -> PerformanceSnapshot:
        return PerformanceSnapshot(**self.to_dict())


SQLITE_MMAP_BYTES = 2 * 1024**3


def tune_for_scans(connection: Connection) -> None:
    """Let SQLite memory-map the file for this connection: the jobs read hundreds of thousands of rows
    by index, and through mmap each costs a memory access instead of a read() call (5x faster on 1M rows).
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")


def service_stats(connection: Connection, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Requests, client and server errors, and latency percentiles (ms) of the window, in one read."""
    table = RequestLog.__table__
    result = connection.execute(
        select(table.c.status, table.c.latency_ms).where(
            table.c.created_at >= start, table.c.created_at < end
        )
    )
    rows = result.all()
    if not rows:
        return {"requests": 0, "errors_4xx": 0, "errors_5xx": 0, "latency_p50": None, "latency_p95": None,
                "latency_p99": None}  # fmt: skip
    status = np.fromiter((row[0] for row in rows), dtype="int64", count=len(rows))
    latency = np.fromiter((row[1] for row in rows), dtype="float64", count=len(rows))
    p50, p95, p99 = (float(v) for v in np.percentile(latency, [50, 95, 99]))
    return {
        "requests": len(rows),
        "errors_4xx": int(((status >= 400) & (status < 500)).sum()),
        "errors_5xx": int((status >= 500).sum()),
        "latency_p50": p50,
        "latency_p95": p95,
        "latency_p99": p99,
    }


def prediction_count(connection: Connection, start: dt.datetime, end: dt.datetime) -> int:
    table = PredictionLog.__table__
    query = select(func.count()).where(table.c.created_at >= start, table.c.created_at < end)
    return int(connection.execute(query).scalar_one())


def live_counts(connection: Connection, end: dt.datetime, hours: float = LIVE_WINDOW_HOURS) -> dict[str, Any]:
    """Requests, server errors and predictions of the `hours` before `end`, counted at the moment
    asked: the monitoring page shows them live, not as of the last performance snapshot."""
    start = end - dt.timedelta(hours=hours)
    table = RequestLog.__table__
    requests, errors = connection.execute(
        select(func.count(), func.sum(case((table.c.status >= 500, 1), else_=0))).where(
            table.c.created_at >= start, table.c.created_at < end
        )
    ).one()
    return {
        "hours": hours,
        "start": start,
        "end": end,
        "requests": int(requests or 0),
        "errors_5xx": int(errors or 0),
        "predictions": prediction_count(connection, start, end),
    }


class _SqliteCrossJoin(Join):
    """`a CROSS JOIN b ON ...`: SQLite keeps the written loop order for CROSS JOIN."""

    inherit_cache = True


@compiles(_SqliteCrossJoin, "sqlite")
def _compile_cross_join(element: _SqliteCrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left, right = compiler.process(element.left, **kw), compiler.process(element.right, **kw)
    return f"{left} CROSS JOIN {right} ON {compiler.process(element.onclause, **kw)}"


def same_lineage(log: Any, actual: Any) -> Any:
    """A prediction is scored only against actuals of its model's data: the version that served it
    ("v3" in the log) was trained on the lineage the actual row was tagged with. Untagged actuals
    (ingested before any model) and versions without a lineage are never scored."""
    versions = ModelVersion.__table__
    label = literal("v") + cast(versions.c.version, String)
    return exists().where(label == log.c.model_version, versions.c.data_lineage == actual.c.lineage)


def accuracy_stats(
    connection: Connection, start: dt.datetime, end: dt.datetime, model_version: str | None = None
) -> dict[str, Any]:
    """Live accuracy of the predictions logged in [start, end) that have actual sales, in one SQL pass."""
    log, actual = PredictionLog.__table__, ActualSale.__table__
    on = and_(actual.c.store == log.c.store, actual.c.dept == log.c.dept, actual.c.week == log.c.week)
    error = log.c.prediction - actual.c.weekly_sales
    absolute = case((error < 0, -error), else_=error)
    weight = case((actual.c.is_holiday, HOLIDAY_WEIGHT), else_=1.0)
    inside_80 = case(
        (and_(actual.c.weekly_sales >= log.c.lower_80, actual.c.weekly_sales <= log.c.upper_80), 1), else_=0
    )
    inside_95 = case(
        (and_(actual.c.weekly_sales >= log.c.lower_95, actual.c.weekly_sales <= log.c.upper_95), 1), else_=0
    )
    if connection.dialect.name == "sqlite":
        # Drive the join from actual_sales (CROSS JOIN fixes SQLite's loop order): only the logged
        # predictions that have an actual are fetched, through the (store, dept, week) index, instead
        # of every prediction of the look-back through the created_at index.
        joined = actual.join(log, on, full=False)
        joined = _SqliteCrossJoin(joined.left, joined.right, joined.onclause)
    else:
        joined = log.join(actual, on)
    query = (
        select(
            func.count(),
            func.sum(weight * absolute),
            func.sum(weight),
            func.sum(absolute),
            func.sum(error),
            func.sum(inside_80),
            func.sum(inside_95),
        )
        .select_from(joined)
        .where(log.c.created_at >= start, log.c.created_at < end)
    )
    query = query.where(same_lineage(log, actual))
    if model_version:
        query = query.where(log.c.model_version == model_version)
    n, weighted, weights, absolute_sum, error_sum, in80, in95 = connection.execute(query).one()
    if not n:
        return {
            "matched_actuals": 0,
            "live_wmae": None,
            "live_mae": None,
            "bias": None,
            "coverage_80": None,
            "coverage_95": None,
        }
    return {
        "matched_actuals": int(n),
        "live_wmae": float(weighted) / float(weights),
        "live_mae": float(absolute_sum) / n,
        "bias": float(error_sum) / n,
        "coverage_80": float(in80) / n,
        "coverage_95": float(in95) / n,
    }


def compute_performance(
    connection: Connection,
    window_start: dt.datetime,
    window_end: dt.datetime,
    *,
    model_version: str | None = None,
    backtest_wmae: float | None = None,
    accuracy_days: float = ACCURACY_LOOKBACK_DAYS,
) -> Performance:
    """All figures for one window; accuracy looks back `accuracy_days` from the window's end."""
    tune_for_scans(connection)
    service = service_stats(connection, window_start, window_end)
    accuracy = accuracy_stats(
        connection, window_end - dt.timedelta(days=accuracy_days), window_end, model_version=model_version
    )
    return Performance(
        window_start=window_start,
        window_end=window_end,
        model_version=model_version,
        predictions=prediction_count(connection, window_start, window_end),
        backtest_wmae=backtest_wmae,
        **service,
        **accuracy,
    )


def backtest_wmae_of(metrics: dict[str, Any] | None) -> float | None:
    """The backtest WMAE from a model's metrics or metadata, wherever the core nests it."""
    if not metrics:
        return None
    for candidate in (metrics, metrics.get("backtest"), metrics.get("metrics")):
        if isinstance(candidate, dict) and isinstance(candidate.get("wmae"), (int, float)):
            return float(candidate["wmae"])
    return None
