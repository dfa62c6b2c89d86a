"""What the monitoring page and the API both do: read a correction of stored weeks from a request,
bound plausible actual sales by the served model, check the admin token of a form, change an alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app

from app import extensions
from app.monitoring import actuals, alerts, sales_check
from app.monitoring.alerts import alert_dict
from app.web import context
from app.web.admin_auth import AdminDenied, admin_actor, check_admin_token

TRUE_WORDS = {"1", "true", "yes", "on"}


CORRECT_HOW = "to change stored weeks on purpose, send the rows again with correct=true and a reason"


def authorised(presented: str | None) -> str | None:
    """None when actuals may be written (the admin token was given); otherwise why not."""
    try:
        check_admin_token(presented)
    except AdminDenied as denied:
        return denied.message
    return None


def correction(correct: str | None, reason: str | None, by: str | None) -> actuals.Correction | None:
    """A correction when one was asked for explicitly (with a reason); None for a plain import."""
    if (correct or "").strip().lower() not in TRUE_WORDS:
        return None
    reason = (reason or "").strip()
    if not reason:
        raise actuals.ActualsError(
            [{"field": "reason", "line": None, "message": "a correction of stored weeks needs a reason"}],
            status=422,
        )
    return actuals.Correction(by=admin_actor(by), reason=reason[:1000])


def upload_bounds() -> sales_check.Bounds:
    """Plausible actual sales for an upload over HTTP, judged against the served model."""
    config = current_app.config
    return sales_check.bounds_for(
        context.forecaster_or_none(),
        dt.date.today(),
        float(config["ACTUALS_MAX_SALES_MULTIPLE"]),
        int(config["ACTUALS_MAX_WEEKS_AHEAD"]),
    )


def change_alert(alert_id: int, action: str, by: str) -> dict[str, Any] | None:
    """Acknowledge or resolve; the alert as a dict, or None when there is no such alert."""
    with extensions.storage().session() as session:
        change = alerts.acknowledge if action == "acknowledge" else alerts.resolve
        alert = change(session, alert_id, by=by)
        return None if alert is None else alert_dict(alert)
