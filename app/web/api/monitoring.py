"""Monitoring under /api/v1: live accuracy by lag of the published forecasts, and the alerts' admin
actions (acknowledge, resolve)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from app import extensions
from app.loop.history import lineage_of
from app.web import context, published
from app.web.admin_auth import admin_actor, require_admin
from app.web.api import bp
from app.web.api.errors import ApiError
from app.web.api.openapi import json_body, operation, query_args
from app.web.monitoring_actions import change_alert
from app.web.schemas import AccuracyQuery, AccuracyResponse, AlertActionRequest, AlertOut

F = TypeVar("F", bound=Callable[..., Any])


@bp.get("/accuracy")
@operation(
    "Accuracy by lag",
    "monitoring",
    description=(
        "Published forecasts scored against actual sales, per lag bucket (weeks ahead), for the production "
        "model's data lineage: live WMAE beside the seasonal naive on the same rows and beside the model's "
        "own backtest for that bucket; bias; interval coverage. The same figures per level of the chain "
        "(each series, store totals, departments across stores, the whole chain). `weeks` keeps the last N "
        "scored weeks."
    ),
    query=AccuracyQuery,
    ok=AccuracyResponse,
    ok_description="Per lag bucket",
)
def accuracy_by_lag() -> Any:
    """Published forecasts scored against actual sales per lag bucket, beside the backtest's figures."""
    weeks = query_args().weeks
    model = context.forecaster()
    since = model.data_through - dt.timedelta(weeks=weeks) if weeks else None
    return {
        "model_version": str(model.version),
        "lineage": lineage_of(model),
        "data_through": model.data_through.isoformat(),
        "since": since.isoformat() if since else None,
        "buckets": published.accuracy_buckets(extensions.storage(), model, since=since),
        "levels": published.accuracy_levels(extensions.storage(), model, since=since),
    }


def _api_alert_action(alert_id: int, action: str) -> Any:
    require_admin()
    body = json_body()
    alert = change_alert(alert_id, action, admin_actor(body.by))
    if alert is None:
        raise ApiError(404, "no such alert", [{"field": "alert_id", "message": f"no alert {alert_id}"}])
    return alert


_ALERT_ERRORS = {
    401: "no admin token was sent",
    403: "the admin token is wrong, or STORECAST_ADMIN_TOKEN is not set on the server",
    404: "no alert with that id",
}


def _alert_operation(summary: str) -> Callable[[F], F]:
    return operation(
        summary,
        "monitoring",
        description="Admin bearer token required; `by` (optional) is recorded beside the token's name.",
        body=AlertActionRequest,
        body_required=False,
        ok=AlertOut,
        admin="required",
        errors=_ALERT_ERRORS,
    )


@bp.post("/alerts/<int:alert_id>/acknowledge")
@_alert_operation("Acknowledge an alert")
def acknowledge_alert(alert_id: int) -> Any:
    """Acknowledge an alert (admin bearer token); `{"by": "name"}` is recorded beside the token."""
    return _api_alert_action(alert_id, "acknowledge")


@bp.post("/alerts/<int:alert_id>/resolve")
@_alert_operation("Resolve an alert")
def resolve_alert(alert_id: int) -> Any:
    """Resolve an alert by hand (admin bearer token); `{"by": "name"}` is recorded beside the token."""
    return _api_alert_action(alert_id, "resolve")
