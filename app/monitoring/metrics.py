"""Prometheus metrics through prometheus-client: request and prediction counters, a latency histogram,
and gauges read from the database at scrape time.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it before anything imports the client)
puts every worker's samples in files there, and a scrape answered by any worker adds them all up:
the client's multiprocess mode. Without it (flask run, tests) the counters are this process'.
Figures that must be global (drift, live accuracy, open alerts) are gauges from the database.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.monitoring import alerts
from app.storage import DriftReport, PerformanceSnapshot, PredictionLog

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Request latency buckets in seconds (upper bounds), Prometheus' usual spread for web handlers.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# (name, help, labels, value): one sample of a gauge; None is exported as NaN (not measured yet).
Gauge = tuple[str, str, dict[str, str], float | None]

COUNTERS = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "storecast_http_requests",
    "HTTP requests handled, by endpoint, method and status.",
    ["endpoint", "method", "status"],
    registry=COUNTERS,
)
HTTP_LATENCY = Histogram(
    "storecast_http_request_duration_seconds",
    "Request latency, by endpoint and method.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
    registry=COUNTERS,
)
PREDICTIONS = Counter(
    "storecast_predictions_served",
    "Predictions served and logged, by source.",
    ["source"],
    registry=COUNTERS,
)


# The labelled children of each route, method and status (and source), looked up once: `labels()`
# checks and joins its arguments and takes a lock on every call, and every request counts itself.
# The client keeps the same children for the process's life, so keeping them here changes nothing.
_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_prediction_children: dict[str, Counter] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    key = (endpoint, method, status)
    children = _request_children.get(key)
    if children is None:
        children = _request_children[key] = (
            HTTP_REQUESTS.labels(endpoint, method, str(status)),
            HTTP_LATENCY.labels(endpoint, method),
        )
    children[0].inc()
    children[1].observe(seconds)


def predictions_served(source: str, count: int) -> None:
    child = _prediction_children.get(source)
    if child is None:
        child = _prediction_children[source] = PREDICTIONS.labels(source)
    child.inc(count)


def reset() -> None:
    """This process's counters back to zero, their labelled children forgotten with them."""
    for metric in (HTTP_REQUESTS, HTTP_LATENCY, PREDICTIONS):
        metric.clear()
    _request_children.clear()
    _prediction_children.clear()


def database_gauges(session: Session) -> list[Gauge]:
    """Drift, live accuracy, the prediction log's size and open alerts, from the jobs' tables."""
    report = session.scalars(select(DriftReport).order_by(DriftReport.id.desc()).limit(1)).first()
    snapshot = session.scalars(
        select(PerformanceSnapshot).order_by(PerformanceSnapshot.id.desc()).limit(1)
    ).first()
    logged = session.execute(select(func.max(PredictionLog.id))).scalar()
    drift_help = "1 when the last drift check flagged the dataset."
    if report is None:
        gauges: list[Gauge] = [("storecast_dataset_drift", drift_help, {}, None)]
    else:
        labels = {"model_version": report.model_version}
        gauges = [
            ("storecast_dataset_drift", drift_help, labels, float(report.dataset_drift)),
            (
                "storecast_drifted_features",
                "Features drifted in the last drift check.",
                labels,
                float(report.features_drifted),
            ),
        ]
    version = {"model_version": (snapshot.model_version or "") if snapshot else ""}
    return [
        *gauges,
        (
            "storecast_live_wmae",
            "WMAE of logged predictions that have actual sales (last snapshot).",
            version,
            snapshot.live_wmae if snapshot else None,
        ),
        (
            "storecast_backtest_wmae",
            "The production model's backtest WMAE.",
            version,
            snapshot.backtest_wmae if snapshot else None,
        ),
        ("storecast_prediction_log_rows", "Rows in the prediction log (highest id).", {}, float(logged or 0)),
        ("storecast_open_alerts", "Alerts open now.", {}, float(len(alerts.open_alerts(session)))),
    ]


class _Gauges:
    """A collector for one scrape's gauges: one family per name, its samples together."""

    def __init__(self, gauges: Iterable[Gauge]) -> None:
        self.gauges = list(gauges)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, help_text, labels, value in self.gauges:
            family = families.setdefault(name, GaugeMetricFamily(name, help_text))
            family.add_sample(
                name, {k: str(v) for k, v in labels.items()}, math.nan if value is None else value
            )
        yield from families.values()


def exposition(gauges: Iterable[Gauge]) -> bytes:
    """The text a scrape gets: every worker's counters (multiprocess mode) or this process', then `gauges`."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(COUNTERS)
    registry.register(_Gauges(gauges))
    return generate_latest(registry)
