"""Alerts: open (deduplicated), acknowledge, resolve; the rules for drift, degradation and error rate."""

from __future__ import annotations

from app.monitoring import alerts
from app.storage import Alert, DriftReport, PerformanceSnapshot
from tests.helpers.clock import at


def test_open_dedupes_acknowledge_and_resolve(mon_app):
    with mon_app.extensions["storage"].session() as session:
        first = alerts.open_alert(session, "artifact", "critical", "v3 refused", {"version": 3}, key="v3")
        again = alerts.open_alert(
            session, "artifact", "critical", "v3 refused again", {"version": 3}, key="v3"
        )
        other = alerts.open_alert(session, "artifact", "critical", "v4 refused", {"version": 4}, key="v4")
        assert first.id == again.id != other.id and again.message == "v3 refused again"
        alerts.acknowledge(session, first.id, by="ops")
        assert first.acknowledged_by == "ops" and first.resolved_at is None
        assert len(alerts.open_alerts(session, "artifact")) == 2
        alerts.resolve(session, first.id)
        assert [a.id for a in alerts.open_alerts(session)] == [other.id]
        assert [a.id for a in alerts.past_alerts(session)] == [first.id]
        reopened = alerts.open_alert(session, "artifact", "warning", "v3 refused once more", key="v3")
        assert reopened.id not in (first.id, other.id)


def _snapshot(**figures) -> PerformanceSnapshot:
    base = dict(
        window_start=at(0.25), window_end=at(0), model_version="v1", requests=100, errors_4xx=0, errors_5xx=0,
        predictions=100, matched_actuals=50, live_wmae=None, backtest_wmae=1000.0,
    )  # fmt: skip
    return PerformanceSnapshot(**{**base, **figures})


def test_rules_open_and_resolve_alerts(mon_app):
    config = {"DEGRADATION_FACTOR": 1.5, "ERROR_RATE_THRESHOLD": 0.05}
    storage = mon_app.extensions["storage"]
    with storage.session() as session:
        session.add(DriftReport(model_version="v1", window_start=at(24), window_end=at(0), rows=500,
                                features_drifted=6, features_tested=10, dataset_drift=True))  # fmt: skip
        session.add(_snapshot(live_wmae=1600.0, errors_5xx=10))
    with storage.session() as session:
        opened = alerts.evaluate(session, config)
        assert set(opened) == {"drift", "error_rate"}  # degradation is judged by lag (app.loop.accuracy)
        assert alerts.evaluate(session, config) == opened  # the same conditions refresh the same alerts
        assert session.query(Alert).count() == 2
    with storage.session() as session:  # things get better
        session.add(DriftReport(model_version="v1", window_start=at(24), window_end=at(0), rows=500,
                                features_drifted=1, features_tested=10, dataset_drift=False))  # fmt: skip
        session.add(_snapshot(live_wmae=1400.0, errors_5xx=5))
    with storage.session() as session:
        assert alerts.evaluate(session, config) == {}
        assert alerts.open_alerts(session) == [] and len(alerts.past_alerts(session)) == 2


def test_error_rate_needs_enough_requests(mon_app):
    with mon_app.extensions["storage"].session() as session:
        session.add(_snapshot(requests=3, errors_5xx=3))
        session.flush()
        assert alerts.evaluate(session, {}) == {}
