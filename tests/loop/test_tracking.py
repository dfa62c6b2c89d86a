"""Tracking signal: a series whose sales drop by half is flagged in its store's digest, which closes when
it recovers; many biased departments of one store make one store-level alert."""

from __future__ import annotations

import datetime as dt

from app.loop import tracking, watch
from app.monitoring import alerts
from tests.loop.rows import add_week as _week


def _check(storage, week: dt.date) -> list:
    """The open bias alerts, and each department a store's digest lists, as (store, dept, severity)."""
    signals = tracking.tracking_signals(storage, "L", week)
    with storage.session() as session:
        flagged = tracking.flag_biased(session, signals)
        watch.raise_alerts(session, {}, [], flagged["notices"])
        found = [(a.store, a.dept, a.severity) for a in alerts.open_alerts(session, "bias")]
        for digest in alerts.open_alerts(session, "digest"):
            found += [(digest.store, d, digest.severity) for d in digest.details["departments"]]
        return found


def test_a_series_halved_is_flagged_and_its_alert_closes_when_it_recovers(app):
    storage = app.extensions["storage"]
    noisy = lambda k: (10_000.0, 10_000.0 + (800 if k % 2 else -800))  # noqa: E731 - errors that cancel
    opened_at = closed_at = None
    for k in range(1, 40):
        if k <= 10:
            halved = (10_000.0, 10_000.0)
        elif k <= 20:
            halved = (10_000.0 - 200 * (k - 10), 5_000.0)  # sales drop by half; forecasts adapt slowly
        elif k <= 23:
            halved = (8_000.0, 10_000.0)  # sales recover before the forecasts do
        else:
            halved = (10_000.0, 10_000.0 + (500 if k % 2 else -500))
        week = _week(storage, k, {(1, 1): halved, (1, 2): noisy(k)})
        found = _check(storage, week)
        assert (1, 2, "info") not in found  # errors that cancel never alarm
        if (1, 1, "info") in found and opened_at is None:
            opened_at = k
        if opened_at and not found and closed_at is None:
            closed_at = k
    assert opened_at is not None and 12 <= opened_at <= 19, opened_at  # within weeks of the drop
    assert closed_at is not None and closed_at > 20, closed_at
    with storage.session() as session:
        (past,) = [a for a in alerts.past_alerts(session) if a.kind == "digest"]
        assert past.store == 1 and past.details["departments"] == [1]
        assert "dept 1 forecasts persistently above" in past.message
        assert past.details["url"] == "/store?store=1"


def test_many_biased_departments_of_one_store_roll_up_into_one_store_alert(app):
    storage = app.extensions["storage"]
    for k in range(1, 10):
        biased = {(2, d): (10_000.0, 6_000.0) for d in range(1, 7)} | {(3, 1): (10_000.0, 6_000.0)}
        fine = {(3, d): (10_000.0, 10_000.0) for d in range(2, 10)}  # 1 of 9: not a store-wide problem
        week = _week(storage, k, biased | fine)
    found = _check(storage, week)
    assert sorted(found, key=str) == sorted([(2, None, "warning"), (3, 1, "info")], key=str)
    with storage.session() as session:
        (store_alert,) = [a for a in alerts.open_alerts(session, "bias") if a.dept is None]
        assert store_alert.details["departments"] == [1, 2, 3, 4, 5, 6]
