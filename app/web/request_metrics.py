"""Request hooks: time every API and page request, count it for /metrics and buffer it for `request_log`."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from app.monitoring import metrics
from app.monitoring.request_log import RequestLogBuffer
from app.storage import utcnow

# Endpoints not worth a row: static files, the scrape itself and the monitoring page's polling partials.
SKIPPED_ENDPOINTS = {"static", "monitoring.metrics"}
SKIPPED_PREFIXES = ("monitoring.partial_",)


def _skipped(endpoint: str | None) -> bool:
    return endpoint in SKIPPED_ENDPOINTS or (endpoint or "").startswith(SKIPPED_PREFIXES)


def init_app(app: Flask, buffer: RequestLogBuffer) -> None:
    """Install the before/after request hooks that time requests into `buffer`."""

    @app.before_request
    def _start_timer() -> None:
        g._monitoring_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.pop("_monitoring_started", None)
        req = request._get_current_object()  # one context lookup, not one per attribute
        if started is None or _skipped(req.endpoint):
            return response
        seconds = time.perf_counter() - started
        rule = req.url_rule.rule if req.url_rule is not None else "unmatched"
        status = response.status_code
        metrics.observe_request(rule, req.method, status, seconds)
        buffer.add(
            {
                "created_at": utcnow(),
                "endpoint": rule[:128],
                "method": req.method[:8],
                "status": status,
                "latency_ms": seconds * 1000.0,
            }
        )
        return response
