"""Alerts: open (deduplicated), acknowledge, resolve; and the rules that open them from the jobs' results.

One open alert per (kind, key): while the condition lasts, a new occurrence refreshes the open
alert's message and details instead of piling up rows. When the condition clears, the alert is
resolved. An acknowledged alert stays open until resolved: acknowledging means "someone is on it".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.forecasting.artifacts import artifact_problem
from app.storage import Alert, AlertDelivery, DriftReport, PerformanceSnapshot, Storage, get_row, utcnow

log = logging.getLogger(__name__)

KINDS = (
    "drift",
    "degradation",
    "bias",
    "error_rate",
    "artifact",
    "data_quality",
    "actuals_feed",
    "store_total",
    "series",
    "digest",
    "covariates",
    "department",
    "dept_total",
)
SEVERITIES = ("info", "warning", "critical")
MIN_REQUESTS_FOR_ERROR_RATE = 20  # fewer requests in a window: one failure is not a rate


def _key_of(alert: Alert) -> str:
    return str((alert.details or {}).get("key", ""))


def open_alerts(session: Session, kind: str | None = None) -> list[Alert]:
    query = select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.opened_at.desc(), Alert.id.desc())
    if kind:
        query = query.where(Alert.kind == kind)
    return list(session.scalars(query))


def past_alerts(session: Session, limit: int = 20) -> list[Alert]:
    query = (
        select(Alert)
        .where(Alert.resolved_at.is_not(None))
        .order_by(Alert.resolved_at.desc(), Alert.id.desc())
    )
    return list(session.scalars(query.limit(limit)))


def open_alert(
    session: Session,
    kind: str,
    severity: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    key: str = "",
    store: int | None = None,
    dept: int | None = None,
) -> Alert:
    """Open an alert, or refresh the open one of the same kind and key; returns it (flushed, with an id).

    `key` tells apart alerts of one kind that are separate problems (for example the artifact of
    version v3 and that of v4); it is kept in details["key"]. `store` and `dept` name the series an
    alert is about. A newly opened alert is queued for the webhook in the same transaction.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    payload = {**(details or {}), "key": key}
    for alert in open_alerts(session, kind):
        if _key_of(alert) == key:
            alert.message, alert.details = message, payload
            if SEVERITIES.index(severity) > SEVERITIES.index(alert.severity):
                alert.severity = severity
            session.flush()
            return alert
    alert = Alert(
        kind=kind,
        severity=severity,
        message=message,
        details=payload,
        opened_at=utcnow(),
        store=store,
        dept=dept,
    )
    session.add(alert)
    session.flush()
    _queue_delivery(session, alert, "opened")
    log.warning("alert opened: %s (%s) %s", kind, severity, message)
    return alert


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """The webhook's JSON: `text` for chat tools (Slack, Mattermost), the fields for everything else."""
    where = ""
    if alert.store is not None:
        where = f" store {alert.store}" + (f" dept {alert.dept}" if alert.dept is not None else "")
    verb = "opened" if event == "opened" else "closed"
    return {
        "text": f"[{alert.severity}] Storecast {alert.kind} alert {verb}{where}: {alert.message}",
        "event": event,
        "alert": alert_dict(alert),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def alert_dict(alert: Alert) -> dict[str, Any]:
    """An alert as JSON (the API answer, the webhook's `alert`), with who acknowledged and resolved it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "store": alert.store,
        "dept": alert.dept,
        "opened_at": _iso(alert.opened_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": _iso(alert.resolved_at),
        "resolved_by": (alert.details or {}).get("resolved_by"),
        "url": (alert.details or {}).get("url"),
    }


def _queue_delivery(session: Session, alert: Alert, event: str) -> None:
    """A delivery row written with the alert's change, so no alert is lost while the webhook is down."""
    session.add(AlertDelivery(alert_id=alert.id, event=event, payload=alert_payload(alert, event)))


def acknowledge(session: Session, alert_id: int, by: str = "operator") -> Alert | None:
    alert = get_row(session, Alert, alert_id)
    if alert is None:
        return None
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = utcnow(), by[:64]
    session.flush()
    return alert


def resolve(session: Session, alert_id: int, by: str = "operator") -> Alert | None:
    """Close an alert by hand; who closed it is kept in its details (`resolved_by`)."""
    alert = get_row(session, Alert, alert_id)
    if alert is not None and alert.resolved_at is None:
        alert.resolved_at = utcnow()
        alert.details = {**(alert.details or {}), "resolved_by": by[:64]}
        _queue_delivery(session, alert, "resolved")
        session.flush()
        log.info("alert resolved: %s %s", alert.kind, alert.message)
    return alert


def resolve_kind(session: Session, kind: str, key: str | None = None) -> int:
    """Resolve the open alerts of a kind (and key, when given) whose condition has cleared."""
    count = 0
    for alert in open_alerts(session, kind):
        if key is None or _key_of(alert) == key:
            alert.resolved_at = utcnow()
            _queue_delivery(session, alert, "resolved")
            count += 1
    session.flush()
    return count


# Rules


def check_drift(session: Session, report: DriftReport | None) -> Alert | None:
    if report is None:
        return None
    if report.dataset_drift:
        message = (
            f"dataset drift: {report.features_drifted} of {report.features_tested} features drifted "
            f"in the last window ({report.rows} predictions, model {report.model_version})"
        )
        details = {"report_id": report.id, "features_drifted": report.features_drifted}
        return open_alert(session, "drift", "warning", message, details)
    resolve_kind(session, "drift")
    return None


def check_error_rate(
    session: Session, snapshot: PerformanceSnapshot | None, threshold: float
) -> Alert | None:
    """Server errors (5xx) over requests; 4xx are the clients' mistakes and are reported, not alerted."""
    if snapshot is None or snapshot.requests < MIN_REQUESTS_FOR_ERROR_RATE:
        return None
    rate = snapshot.errors_5xx / snapshot.requests
    if rate > threshold:
        message = (
            f"error rate {rate:.1%} ({snapshot.errors_5xx} server errors in {snapshot.requests} requests) "
            f"is above {threshold:.1%}"
        )
        details = {"snapshot_id": snapshot.id, "rate": rate, "errors_4xx": snapshot.errors_4xx}
        return open_alert(session, "error_rate", "critical", message, details)
    resolve_kind(session, "error_rate")
    return None


def evaluate(session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    """The alert job: apply every rule to the latest drift report and performance snapshot."""
    report = session.scalars(select(DriftReport).order_by(DriftReport.id.desc()).limit(1)).first()
    snapshot = session.scalars(
        select(PerformanceSnapshot).order_by(PerformanceSnapshot.id.desc()).limit(1)
    ).first()
    opened = {
        "drift": check_drift(session, report),
        "error_rate": check_error_rate(session, snapshot, float(config.get("ERROR_RATE_THRESHOLD", 0.05))),
    }
    return {kind: alert.id for kind, alert in opened.items() if alert is not None}


def open_artifact_alert(storage: Storage, row: Any, error: BaseException | str) -> None:
    """Open (or refresh) the critical "artifact" alert of a refused version: one per version, however
    many workers refuse the same file (open_alert dedupes by kind and key).

    The text says what every worker does, whichever worker wrote it, and names the artifact's file
    only: alerts reach the monitoring page and the webhook, where no server path belongs.
    """
    version = int(row.version)
    artifact = PurePath(str(row.artifact_path)).name
    reason = artifact_problem(error, row.artifact_path) if isinstance(error, BaseException) else error
    with storage.session() as session:
        open_alert(
            session,
            "artifact",
            "critical",
            f"production version v{version} cannot be loaded from its artifact {artifact} ({reason}). "
            f"A worker that already holds v{version} in memory keeps serving it; any other worker "
            "reports not ready (/ready 503) and answers predictions 503 rather than forecast with "
            "another version. Restore the artifact, or roll back or promote another version.",
            {
                "version": version,
                "name": row.name,
                "artifact": artifact,
                "expected_sha256": row.artifact_sha256,
                "error": reason[:1000],
            },
            key=f"{row.name}:v{version}",
        )
    log.critical("artifact of %s v%s refused: %s", row.name, version, reason)
