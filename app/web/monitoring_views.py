"""Monitoring over HTTP: the /monitoring page and its HTMX partials, /metrics, and POST /api/v1/actuals.

The page is server-rendered; each panel is a partial that HTMX re-fetches every 30 s. The web
layer computes nothing here either: figures come from the jobs' tables, except the health panel's
request and prediction counts of the last 24 hours, counted live at render.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlalchemy import select

from app import extensions
from app.jobs import tasks as jobs
from app.limits import parse_json
from app.monitoring import actuals, alerts, performance, retention
from app.monitoring import metrics as monitoring_metrics
from app.monitoring.alerts import alert_dict
from app.storage import DriftReport, DriftResult, PerformanceSnapshot, get_row, utcnow
from app.web import context, published
from app.web import monitoring_charts as charts
from app.web.admin_auth import AdminDenied, admin_actor, check_admin_token, require_admin
from app.web.apidoc import json_body, operation, query_args
from app.web.errors import ApiError, validation_details
from app.web.schemas import (
    ActualRow,
    ActualsQuery,
    ActualsRequest,
    ActualsResponse,
    AlertActionRequest,
    AlertOut,
)

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

pages_bp = Blueprint("monitoring", __name__)
api_bp = Blueprint("monitoring_api", __name__)

STARTED = time.time()
CHART_SNAPSHOTS = 96  # a day of 15-minute windows
CHART_DAYS = 365  # the predictions-per-day chart: a year of the retention's daily rollup


def _authorised(presented: str | None) -> str | None:
    """None when actuals may be written (the admin token was given); otherwise why not."""
    try:
        check_admin_token(presented)
    except AdminDenied as denied:
        return denied.message
    return None


TRUE_WORDS = {"1", "true", "yes", "on"}
CORRECT_HOW = "to change stored weeks on purpose, send the rows again with correct=true and a reason"


def _correction(correct: str | None, reason: str | None, by: str | None) -> actuals.Correction | None:
    """A correction when one was asked for explicitly (with a reason); None for a plain import."""
    if (correct or "").strip().lower() not in TRUE_WORDS:
        return None
    reason = (reason or "").strip()
    if not reason:
        raise actuals.ActualsError(
            [{"field": "reason", "line": None, "message": "a correction of stored weeks needs a reason"}]
        )
    return actuals.Correction(by=admin_actor(by), reason=reason[:1000])


# data for panels


def _latest_drift(session: Any) -> tuple[DriftReport | None, list[DriftResult]]:
    report = session.scalars(select(DriftReport).order_by(DriftReport.id.desc()).limit(1)).first()
    if report is None:
        return None, []
    results = session.scalars(
        select(DriftResult).where(DriftResult.report_id == report.id).order_by(DriftResult.id)
    ).all()
    return report, list(results)


def _health() -> dict[str, Any]:
    holder = extensions.holder()
    with contextlib.suppress(Exception):  # no model yet: the panel says so
        holder.get()
    status = holder.status()
    database = extensions.storage().ping()
    job_names = jobs.enabled_jobs(current_app.config)
    runs = jobs.last_runs(extensions.storage(), job_names) if database else {}
    now = utcnow()
    live, stale = (_live_counts(now), extensions.staleness()) if database else (None, None)
    job_rows = []
    for job in job_names:
        run = runs.get(job)
        minutes = jobs.interval_minutes(current_app.config, job)
        late = run is None or (now - run.started_at) > dt.timedelta(minutes=2 * minutes)
        job_rows.append({"job": job, "run": run, "interval": minutes, "late": late})
    return {
        "model_version": status.get("serving"),
        "refused": status.get("refused_error"),
        "uptime": _duration(time.time() - STARTED),
        "database": database,
        "database_backend": extensions.storage().engine.dialect.name,
        "jobs": job_rows,
        "scheduler_enabled": bool(current_app.config.get("SCHEDULER_ENABLED")),
        "live": live,
        "staleness": stale,
    }


def _live_counts(now: dt.datetime) -> dict[str, Any] | None:
    """The last 24 hours' requests and predictions, read now (this worker's buffered rows first)."""
    try:
        extensions.request_log().flush()
        with extensions.storage().engine.connect() as connection:
            return performance.live_counts(connection, now)
    except Exception:  # noqa: BLE001 - the panel still shows the rest
        log.exception("live counts failed")
        return None


def _duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def _context_charts() -> dict[str, Any]:
    now = utcnow()
    with extensions.storage().session() as session:
        snapshots = list(
            session.scalars(
                select(PerformanceSnapshot).order_by(PerformanceSnapshot.id.desc()).limit(CHART_SNAPSHOTS)
            )
        )[::-1]
        days = retention.daily_predictions(session, now.date() - dt.timedelta(days=CHART_DAYS), now)
    latest = snapshots[-1] if snapshots else None
    found = charts.snapshot_charts(snapshots)
    daily = charts.daily_chart(days) if found else None
    return {"charts": {**found, "daily": daily} if daily else found, "latest": latest}


def _context_drift() -> dict[str, Any]:
    with extensions.storage().session() as session:
        report, results = _latest_drift(session)
    return {"report": report, "results": results}


def _production() -> Any:
    """The served (rolled-forward) production model, or None."""
    return context.forecaster_or_none()


def _bounds() -> actuals.Bounds:
    """Plausible actual sales for an upload over HTTP, judged against the served model."""
    config = current_app.config
    return actuals.bounds_for(
        _production(),
        dt.date.today(),
        float(config["ACTUALS_MAX_SALES_MULTIPLE"]),
        int(config["ACTUALS_MAX_WEEKS_AHEAD"]),
    )


def _context_lag() -> dict[str, Any]:
    return published.lag_accuracy_context(
        extensions.storage(), _production(), current_app.config["MODEL_NAME"]
    )


def _context_alerts() -> dict[str, Any]:
    with extensions.storage().session() as session:
        return {"open_alerts": alerts.open_alerts(session), "past_alerts": alerts.past_alerts(session)}


# pages


@pages_bp.get("/monitoring")
def page() -> str:
    return render_template(
        "monitoring/page.html",
        health=_health(),
        **_context_charts(),
        **_context_drift(),
        **_context_alerts(),
        **_context_lag(),
        upload=None,
    )


@pages_bp.get("/monitoring/partials/health")
def partial_health() -> str:
    return render_template("monitoring/_health.html", health=_health())


@pages_bp.get("/monitoring/partials/charts")
def partial_charts() -> str:
    return render_template("monitoring/_charts.html", **_context_charts())


@pages_bp.get("/monitoring/partials/drift")
def partial_drift() -> str:
    return render_template("monitoring/_drift.html", **_context_drift())


@pages_bp.get("/monitoring/partials/alerts")
def partial_alerts() -> str:
    return render_template("monitoring/_alerts.html", **_context_alerts())


@pages_bp.get("/monitoring/drift/<int:result_id>")
def partial_feature(result_id: int) -> Any:
    with extensions.storage().session() as session:
        result = get_row(session, DriftResult, result_id)
    if result is None:
        return Response("<p class='muted'>That drift result no longer exists.</p>", status=404)
    chart = charts.distribution_chart(result.feature, result.details or {})
    return render_template("monitoring/_feature.html", result=result, chart=chart)


def _change_alert(alert_id: int, action: str, by: str) -> dict[str, Any] | None:
    """Acknowledge or resolve; the alert as a dict, or None when there is no such alert."""
    with extensions.storage().session() as session:
        change = alerts.acknowledge if action == "acknowledge" else alerts.resolve
        alert = change(session, alert_id, by=by)
        return None if alert is None else alert_dict(alert)


def _alert_action(alert_id: int, action: str) -> Any:
    """The page's buttons: CSRF-checked and admin-token-gated (no anonymous visitor silences an alert)."""
    try:
        check_admin_token(request.form.get("admin_token"))
    except AdminDenied as denied:
        view = {**_context_alerts(), "alert_error": denied.message}
        if request.headers.get("HX-Request"):
            return render_template("monitoring/_alerts.html", **view), denied.status
        return render_template(
            "monitoring/page.html",
            health=_health(),
            **_context_charts(),
            **_context_drift(),
            **_context_lag(),
            **view,
            upload=None,
        ), denied.status
    if _change_alert(alert_id, action, admin_actor(request.form.get("by"))) is None:
        return Response("no such alert", status=404)
    if request.headers.get("HX-Request"):
        return render_template("monitoring/_alerts.html", **_context_alerts())
    return redirect(url_for("monitoring.page") + "#alerts", code=303)


@pages_bp.post("/monitoring/alerts/<int:alert_id>/acknowledge")
def acknowledge_alert(alert_id: int) -> Any:
    return _alert_action(alert_id, "acknowledge")


@pages_bp.post("/monitoring/alerts/<int:alert_id>/resolve")
def resolve_alert(alert_id: int) -> Any:
    return _alert_action(alert_id, "resolve")


def _api_alert_action(alert_id: int, action: str) -> Any:
    require_admin()
    body = json_body()
    alert = _change_alert(alert_id, action, admin_actor(body.by))
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


@api_bp.post("/alerts/<int:alert_id>/acknowledge")
@_alert_operation("Acknowledge an alert")
def api_acknowledge_alert(alert_id: int) -> Any:
    """Acknowledge an alert (admin bearer token); `{"by": "name"}` is recorded beside the token."""
    return _api_alert_action(alert_id, "acknowledge")


@api_bp.post("/alerts/<int:alert_id>/resolve")
@_alert_operation("Resolve an alert")
def api_resolve_alert(alert_id: int) -> Any:
    """Resolve an alert by hand (admin bearer token); `{"by": "name"}` is recorded beside the token."""
    return _api_alert_action(alert_id, "resolve")


@pages_bp.post("/monitoring/actuals")
def upload_actuals() -> Any:
    """The page's CSV upload (CSRF-protected form post, admin token); answers with the upload panel."""
    upload: dict[str, Any] = {}
    denied = _authorised(request.form.get("admin_token") or None)
    file = request.files.get("file")
    status = 200
    if denied:
        upload, status = {"error": denied, "details": []}, 403
    elif file is None or not file.filename:
        upload, status = {"error": "choose a CSV file in train.csv's format", "details": []}, 400
    else:
        try:
            correction = _correction(
                request.form.get("correct"), request.form.get("reason"), request.form.get("by")
            )
            with extensions.storage().session() as session:
                result = actuals.import_csv(
                    session,
                    file.read(),
                    name=file.filename,
                    model_name=current_app.config["MODEL_NAME"],
                    bounds=_bounds(),
                    correction=correction,
                )
            upload = {"result": result.to_dict(), "filename": file.filename, "corrected": bool(correction)}
        except actuals.ActualsError as error:
            message = f"{file.filename} was not imported"
            if isinstance(error, actuals.StoredWeekConflict):
                message += (
                    ": it would change stored weeks (tick \u201ccorrect stored weeks\u201d and give a reason)"
                )
            upload, status = {"error": message, "details": error.errors}, error.status
    if request.headers.get("HX-Request"):
        return render_template("monitoring/_upload.html", upload=upload), status
    return (
        render_template(
            "monitoring/page.html",
            health=_health(),
            **_context_charts(),
            **_context_drift(),
            **_context_alerts(),
            **_context_lag(),
            upload=upload,
        ),
        status,
    )


# metrics


@pages_bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: the workers' counters, plus drift and accuracy from the jobs' tables."""
    with extensions.storage().session() as session:
        gauges = monitoring_metrics.database_gauges(session)
    holder = extensions.holder()  # what is in memory: a scrape never loads a model
    gauges += published.lag_gauges(
        extensions.storage(), holder.loaded_forecaster, current_app.config["MODEL_NAME"]
    )
    return Response(monitoring_metrics.exposition(gauges), mimetype=monitoring_metrics.CONTENT_TYPE)


# API


def _detail(error: dict[str, Any]) -> dict[str, Any]:
    """{"field", "message", "line"}; CSV messages start with their line, JSON fields name rows[i]."""
    field, line, message = error.get("field") or "body", error.get("line"), error["message"]
    if line and not field.startswith("rows"):
        message = f"line {line}: {message}"
    extra = {"line": line} if line else {}
    if "count" in error:  # app.limits.cap_details' summary of the problems not listed
        extra["count"] = error["count"]
    return {"field": field, "message": message, **extra}


def _refused(details: list[dict[str, Any]], status: int = 400, hint: str = "") -> ApiError:
    problems = sum(d.get("count", 1) for d in details)
    message = f"{problems} problem(s) in the actual sales; nothing was imported"
    return ApiError(status, f"{message} ({hint})" if hint else message, details)


def _json_rows(data: Any, bounds: actuals.Bounds) -> pd.DataFrame:
    """JSON rows checked by ActualsRequest (the model the document shows; a bare list is its `rows`) and
    by the one check of actual sales, both in the same answer."""
    try:
        body = ActualsRequest.model_validate({"rows": data} if isinstance(data, list) else data)
    except ValidationError as error:
        details = validation_details(error)
        raw = data.get("rows") if isinstance(data, dict) else data
        try:
            actuals.parse_rows(raw, bounds)
        except actuals.ActualsError as checked:
            named = {d["field"] for d in details}
            details += [_detail(e) for e in checked.errors if e.get("field") not in named]
            details.sort(key=lambda d: (d["field"] == "details", _row_of(d["field"])))
        raise _refused(details) from None
    return actuals.parse_rows([row.model_dump(exclude_unset=True) for row in body.rows], bounds)


def _row_of(field: str) -> int:
    """rows[12].store -> 12 (so details of both checks are listed in row order)."""
    head = field.removeprefix("rows[").partition("]")[0]
    return int(head) if head.isdigit() else -1


@api_bp.post("/actuals")
@operation(
    "Import actual sales",
    "monitoring",
    description=(
        'Actual weekly sales, so live accuracy can be scored: JSON rows (`{"rows": [...]}` or a bare '
        "list) or a `text/csv` body in train.csv's format (Store, Dept, Date, Weekly_Sales, IsHoliday; "
        "`application/csv`, `text/plain` and a multipart `file` are read the same way). Admin bearer token "
        "required. All rows or none, every problem in one answer by row and field: malformed values (400); "
        "stores and departments the production model's data does not know, weeks before its data or past "
        "the current week, sales beyond a multiple of the series' largest week, repeated rows (422). "
        "Re-sending a stored week's value changes nothing; a row that would change a stored week is "
        "refused (422) unless the request says `correct=true` with a `reason` (and optionally `by`): each "
        "change is then recorded with its old and new values, who and when."
    ),
    body_schema={
        "anyOf": [
            {"$ref": "#/components/schemas/ActualsRequest"},
            {"type": "array", "items": {"$ref": "#/components/schemas/ActualRow"}, "minItems": 1},
        ]
    },
    query=ActualsQuery,
    body_example={"rows": [{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 41231.5}]},
    csv_body="Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,41231.5,FALSE\n",
    ok=ActualsResponse,
    ok_description="Counts of the upsert",
    admin="required",
    errors={
        400: (
            "Malformed JSON, or rows that cannot be imported (nothing is): `details` names each by "
            "`rows[i].field` (JSON) or CSV column and `line`"
        ),
        401: "no admin token was sent",
        403: "the admin token is wrong, or STORECAST_ADMIN_TOKEN is not set on the server",
        422: (
            "A query parameter is unknown or out of range, or well-formed rows are refused (nothing is "
            "imported): unknown stores or departments, weeks outside "
            "the model's calendar, implausible sales, repeated rows, or changes to stored weeks without "
            "`correct=true`"
        ),
    },
    extra_models=(ActualsRequest, ActualRow),
)
def api_actuals() -> Any:
    """Actual weekly sales as JSON rows ({"rows": [...]} or a list) or a CSV body (text/csv)."""
    require_admin()
    content_type = (request.mimetype or "").lower()
    try:
        query = query_args()
        correction = _correction("true" if query.correct else None, query.reason, query.by)
        if content_type in {"text/csv", "application/csv", "text/plain"}:
            parsed = actuals.parse_csv(request.get_data(), bounds=_bounds())
        elif content_type == "multipart/form-data" and "file" in request.files:
            parsed = actuals.parse_csv(
                request.files["file"].read(), name=request.files["file"].filename or "file", bounds=_bounds()
            )
        elif content_type == "application/json":
            parsed = _json_rows(parse_json(request.get_data()), _bounds())
        else:
            raise ApiError(
                415,
                "send JSON rows (application/json) or a CSV in train.csv's format (text/csv)",
                [{"field": "Content-Type", "message": f"got {content_type or 'none'}"}],
            )
        with extensions.storage().session() as session:
            result = actuals.upsert_actuals(
                session, parsed, model_name=current_app.config["MODEL_NAME"], correction=correction
            )
    except actuals.ActualsError as error:
        hint = CORRECT_HOW if isinstance(error, actuals.StoredWeekConflict) else ""
        raise _refused([_detail(e) for e in error.errors], error.status, hint) from None
    return result.to_dict()
