"""The request and prediction counters: counted per label set, from zero again after a reset."""

from __future__ import annotations

from app.monitoring import metrics
from app.monitoring.metrics import COUNTERS


def _requests(status: str) -> float:
    labels = {"endpoint": "/api/v1/x", "method": "POST", "status": status}
    return COUNTERS.get_sample_value("storecast_http_requests_total", labels) or 0.0


def _latency_count() -> float:
    labels = {"endpoint": "/api/v1/x", "method": "POST"}
    return COUNTERS.get_sample_value("storecast_http_request_duration_seconds_count", labels) or 0.0


def test_requests_are_counted_per_status_and_timed_per_route() -> None:
    metrics.reset()
    for status in (200, 200, 422):
        metrics.observe_request("/api/v1/x", "POST", status, 0.002)
    assert _requests("200") == 2.0 and _requests("422") == 1.0
    assert _latency_count() == 3.0
    metrics.predictions_served("api", 52)
    assert COUNTERS.get_sample_value("storecast_predictions_served_total", {"source": "api"}) == 52.0


def test_after_a_reset_the_same_labels_count_from_zero_and_are_exported() -> None:
    metrics.observe_request("/api/v1/x", "POST", 200, 0.002)
    metrics.predictions_served("api", 1)
    metrics.reset()
    assert _requests("200") == 0.0
    metrics.observe_request("/api/v1/x", "POST", 200, 0.002)
    metrics.predictions_served("api", 3)
    assert _requests("200") == 1.0 and _latency_count() == 1.0
    assert COUNTERS.get_sample_value("storecast_predictions_served_total", {"source": "api"}) == 3.0
