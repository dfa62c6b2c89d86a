"""Liveness and readiness under /api/v1, and the Prometheus scrape at /metrics (an operator's URL,
outside the versioned API: its own small blueprint, without the API's headers)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from app import extensions
from app.monitoring import metrics as monitoring_metrics
from app.serving.holder import ModelUnavailable
from app.web import published
from app.web.api import bp
from app.web.api.openapi import operation
from app.web.schemas import HealthResponse, ReadyResponse

metrics_bp = Blueprint("metrics", __name__)


@bp.get("/health")
@operation(
    "Liveness",
    "service",
    description="The process answers; needs neither a model nor the database.",
    ok=HealthResponse,
    ok_description="Alive",
)
def health() -> Any:
    """Alive: the process answers (no model or database needed)."""
    return {"status": "ok"}


@bp.get("/ready")
@operation(
    "Readiness",
    "service",
    description=(
        "This worker serves the registry's production version and the database answers; 503 (same body) "
        "otherwise, naming the version it serves and the production version when they differ."
    ),
    ok=ReadyResponse,
    ok_description="Ready",
    errors={
        503: "Not ready: no model loaded, a version other than production's, or the database is unreachable"
    },
    error_models={503: ReadyResponse},
)
def ready() -> Any:
    """Ready to serve: this worker serves the production version and the database answers; 503 otherwise.

    A worker that cannot load production's artifact and still holds another version is not ready and
    refuses to forecast: behind a load balancer it is taken out until production loads.
    """
    holder = extensions.holder()
    database = extensions.storage().ping()
    why = None
    try:
        holder.get()
    except Exception as error:  # noqa: BLE001 - ModelUnavailable or a registry failure: not ready
        why = str(error) if isinstance(error, ModelUnavailable) else "the model registry cannot be read"
    version = holder.version  # what is in memory, even while it is not production's
    loaded = version is not None
    other = holder.not_production() if loaded else None
    if other:
        why = other
    if not database:
        why = "the database is unreachable"
    ok = loaded and database and not other
    body = {
        "status": "ready" if ok else "unavailable",
        "model_loaded": loaded,
        "database": database,
        "model_version": version,
        "production_version": holder.production_version,
        "detail": why,
    }
    return body, 200 if ok else 503


@metrics_bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: the workers' counters, plus drift and accuracy from the jobs' tables."""
    with extensions.storage().session() as session:
        gauges = monitoring_metrics.database_gauges(session)
    holder = extensions.holder()  # what is in memory: a scrape never loads a model
    gauges += published.lag_gauges(
        extensions.storage(), holder.loaded_forecaster, current_app.config["MODEL_NAME"]
    )
    return Response(monitoring_metrics.exposition(gauges), mimetype=monitoring_metrics.CONTENT_TYPE)
