"""The /monitoring page and its HTMX partials; the actuals upload and the alert buttons of the page.

The page is server-rendered; each panel is a partial that HTMX re-fetches every 30 s. The web
layer computes nothing here either: figures come from the jobs' tables, except the health panel's
request and prediction counts of the last 24 hours, counted live at render.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from app import extensions
from app.jobs import tasks as jobs
from app.monitoring import actuals, alerts, performance, retention
from app.storage import DriftReport, DriftResult, PerformanceSnapshot, get_row, utcnow
from app.web import context, published
from app.web.admin_auth import AdminDenied, admin_actor, check_admin_token
from app.web.monitoring_actions import authorised, change_alert, correction, upload_bounds
from app.web.pages import monitoring_charts as charts

log = logging.getLogger(__name__)

bp = Blueprint("monitoring", __name__)

STARTED = time.time()
CHART_SNAPSHOTS = 96  # a day of 15-minute windows
CHART_DAYS = 365  # the predictions-per-day chart: a year of the retention's daily rollup


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


def _context_lag() -> dict[str, Any]:
    return published.lag_accuracy_context(
        extensions.storage(), _production(), current_app.config["MODEL_NAME"]
    )


def _context_alerts() -> dict[str, Any]:
    with extensions.storage().session() as session:
        return {"open_alerts": alerts.open_alerts(session), "past_alerts": alerts.past_alerts(session)}


@bp.get("/monitoring")
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


@bp.get("/monitoring/partials/health")
def partial_health() -> str:
    return render_template("monitoring/_health.html", health=_health())


@bp.get("/monitoring/partials/charts")
def partial_charts() -> str:
    return render_template("monitoring/_charts.html", **_context_charts())


@bp.get("/monitoring/partials/drift")
def partial_drift() -> str:
    return render_template("monitoring/_drift.html", **_context_drift())


@bp.get("/monitoring/partials/alerts")
def partial_alerts() -> str:
    return render_template("monitoring/_alerts.html", **_context_alerts())


@bp.get("/monitoring/drift/<int:result_id>")
def partial_feature(result_id: int) -> Any:
    with extensions.storage().session() as session:
        result = get_row(session, DriftResult, result_id)
    if result is None:
        return Response("<p class='muted'>That drift result no longer exists.</p>", status=404)
    chart = charts.distribution_chart(result.feature, result.details or {})
    return render_template("monitoring/_feature.html", result=result, chart=chart)


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
    if change_alert(alert_id, action, admin_actor(request.form.get("by"))) is None:
        return Response("no such alert", status=404)
    if request.headers.get("HX-Request"):
        return render_template("monitoring/_alerts.html", **_context_alerts())
    return redirect(url_for("monitoring.page") + "#alerts", code=303)


@bp.post("/monitoring/alerts/<int:alert_id>/acknowledge")
def acknowledge_alert(alert_id: int) -> Any:
    return _alert_action(alert_id, "acknowledge")


@bp.post("/monitoring/alerts/<int:alert_id>/resolve")
def resolve_alert(alert_id: int) -> Any:
    return _alert_action(alert_id, "resolve")


@bp.post("/monitoring/actuals")
def upload_actuals() -> Any:
    """The page's CSV upload (CSRF-protected form post, admin token); answers with the upload panel."""
    upload: dict[str, Any] = {}
    denied = authorised(request.form.get("admin_token") or None)
    file = request.files.get("file")
    status = 200
    if denied:
        upload, status = {"error": denied, "details": []}, 403
    elif file is None or not file.filename:
        upload, status = {"error": "choose a CSV file in train.csv's format", "details": []}, 400
    else:
        try:
            asked = correction(
                request.form.get("correct"), request.form.get("reason"), request.form.get("by")
            )
            with extensions.storage().session() as session:
                result = actuals.import_csv(
                    session,
                    file.read(),
                    name=file.filename,
                    model_name=current_app.config["MODEL_NAME"],
                    bounds=upload_bounds(),
                    correction=asked,
                )
            upload = {"result": result.to_dict(), "filename": file.filename, "corrected": bool(asked)}
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
