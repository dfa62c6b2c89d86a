"""Alerts reach people: each alert's opening and closing is posted to a real HTTP server on loopback,
retried while it is down, and recorded."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.monitoring import alerts, webhook
from app.storage import AlertDelivery, utcnow


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port():
    return _free_port()


def test_deliveries_are_retried_while_the_webhook_is_down_and_sent_when_it_is_up(app, port):
    storage = app.extensions["storage"]
    url = f"http://127.0.0.1:{port}/hook"
    with storage.session() as session:
        alert = alerts.open_alert(
            session, "bias", "warning", "store 4: 6 departments biased", key="store 4", store=4
        )
        alert_id = alert.id
    down = webhook.deliver_pending(storage, url, timeout=1.0)
    assert down == {"due": 1, "delivered": 0, "failed": 1}
    with storage.session() as session:
        (delivery,) = session.query(AlertDelivery).all()
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error
        assert delivery.next_attempt_at > utcnow()
    assert webhook.deliver_pending(storage, url)["due"] == 0  # not yet due again

    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        later = utcnow() + dt.timedelta(minutes=5)
        assert webhook.deliver_pending(storage, url, now=later)["delivered"] == 1
        with storage.session() as session:
            alerts.resolve(session, alert_id)
        assert webhook.deliver_pending(storage, url, now=later)["delivered"] == 1
    finally:
        server.shutdown()
        server.server_close()
    opened, closed = _Receiver.received
    assert opened["event"] == "opened" and closed["event"] == "resolved"
    assert (
        "store 4" in opened["text"]
        and opened["alert"]["store"] == 4
        and opened["alert"]["severity"] == "warning"
    )
    with storage.session() as session:
        assert {d.status for d in session.query(AlertDelivery)} == {"delivered"}
        assert all(d.delivered_at is not None for d in session.query(AlertDelivery))


def test_without_a_webhook_deliveries_are_marked_skipped(app):
    storage = app.extensions["storage"]
    with storage.session() as session:
        alerts.open_alert(session, "drift", "warning", "drift", key="x")
    assert webhook.deliver_pending(storage, None) == {"due": 1, "delivered": 0, "failed": 0}
    with storage.session() as session:
        assert session.query(AlertDelivery).one().status == "skipped"


def test_retry_delays_grow_to_an_hour():
    assert [webhook.retry_delay(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert webhook.retry_delay(50) == dt.timedelta(hours=1)
