"""Alerts reach people: each alert's opening and closing is posted to a real HTTP server on loopback,
retried while it is down, and recorded; a delivery is bounded by one deadline, only a complete answer
counts, and every event reaches the receiver under one id, posted by one run at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.monitoring import alerts, webhook
from app.storage import AlertDelivery, utcnow
from tests.helpers.paths import REPO_ROOT as ROOT

DEADLINE = 1.0
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


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


class _ScriptedReceiver:
    """A real HTTP receiver on loopback: it reads each request whole, records the event id of its
    header and body, then writes the answer that `answer(sock, attempt)` scripts, byte by byte if it
    likes (attempt counts the requests it got, from 1)."""

    def __init__(self, answer: Callable[[socket.socket, int], None]) -> None:
        self.events: list[tuple[str | None, str | None]] = []  # (header id, body id) per request
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                headers = {}
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(self.rfile.read(int(headers["content-length"])))
                receiver.events.append((headers.get(webhook.EVENT_ID_HEADER.lower()), body.get("event_id")))
                with contextlib.suppress(OSError):  # the sender gave up and hung up
                    answer(self.connection, len(receiver.events))

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> _ScriptedReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _trickle(sock: socket.socket, _attempt: int) -> None:
    for byte in OK:
        sock.sendall(bytes([byte]))
        time.sleep(0.25)  # each byte well within a per-read timeout, the whole answer well past the deadline


def _open(app, count: int = 1, kind: str = "drift") -> None:
    with app.extensions["storage"].session() as session:
        for n in range(count):
            alerts.open_alert(session, kind, "warning", f"{kind} {n}", key=f"k{n}")


def _deliveries(app) -> list[AlertDelivery]:
    with app.extensions["storage"].session() as session:
        return session.query(AlertDelivery).order_by(AlertDelivery.id).all()


def test_a_trickling_receiver_is_cut_at_the_deadline_and_holds_the_run_no_longer(app):
    _open(app, 3)
    storage = app.extensions["storage"]
    with _ScriptedReceiver(_trickle) as receiver:
        started = time.monotonic()
        result = webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE)
        elapsed = time.monotonic() - started
    assert result == {"due": 3, "delivered": 0, "failed": 1}
    assert elapsed < DEADLINE + 0.5, elapsed  # one deadline for the run: the others wait for the next
    first, *rest = _deliveries(app)
    assert first.status == "pending" and first.attempts == 1
    assert f"no complete answer within {DEADLINE:g} s" in first.last_error
    assert [(d.status, d.attempts) for d in rest] == [("pending", 0), ("pending", 0)]
    assert len(receiver.events) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200",  # a status line cut short
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n",  # headers cut short
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",  # a body cut short
        b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",  # a POST lost to a redirect
        b"garbage\r\n\r\n",
    ],
)
def test_a_partial_or_malformed_answer_is_a_failed_delivery(app, answer):
    _open(app)
    with _ScriptedReceiver(lambda sock, _attempt: sock.sendall(answer)) as receiver:
        result = webhook.deliver_pending(app.extensions["storage"], receiver.url, timeout=DEADLINE)
    assert result["failed"] == 1 and result["delivered"] == 0
    (delivery,) = _deliveries(app)
    assert delivery.status == "pending" and delivery.last_error and delivery.delivered_at is None


def test_an_answer_past_the_deadline_is_retried_under_the_same_event_id(app):
    """The receiver got the first attempt but answered too late: the retry carries the same id, in the
    header and the body, so it can drop the repeat; the sender records one delivery, two attempts."""

    def slow_then_well(sock: socket.socket, attempt: int) -> None:
        if attempt == 1:
            time.sleep(DEADLINE + 0.5)
        sock.sendall(OK)

    _open(app)
    storage = app.extensions["storage"]
    with _ScriptedReceiver(slow_then_well) as receiver:
        assert webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE)["failed"] == 1
        later = utcnow() + dt.timedelta(minutes=5)
        assert webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE, now=later)["delivered"] == 1
        assert webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE, now=later)["due"] == 0
    (delivery,) = _deliveries(app)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert receiver.events == [(delivery.event_id, delivery.event_id)] * 2


def test_runs_at_once_post_each_event_once(app):
    """Two runs (two workers' schedulers, or a manual run beside the scheduler's) against a slow
    receiver: each event is claimed by one of them and reaches the receiver once."""

    def slow(sock: socket.socket, _attempt: int) -> None:
        time.sleep(0.3)
        sock.sendall(OK)

    _open(app, 4)
    storage = app.extensions["storage"]
    results = []
    with _ScriptedReceiver(slow) as receiver:
        runs = [
            threading.Thread(
                target=lambda: results.append(
                    webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE)
                )
            )
            for _ in range(2)
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    assert sum(result["delivered"] for result in results) == 4
    ids = [header for header, _body in receiver.events]
    assert sorted(ids) == sorted(d.event_id for d in _deliveries(app))  # each once
    assert {(d.status, d.attempts) for d in _deliveries(app)} == {("delivered", 1)}


def test_a_run_killed_mid_way_keeps_what_it_delivered(app):
    """A run is killed (kill -9, a worker past its timeout) while a receiver stalls on its second event:
    the first stays delivered and is not posted again; the second is retried under its own id."""
    storage = app.extensions["storage"]
    stalled = threading.Event()

    def stall_on_second(sock: socket.socket, attempt: int) -> None:
        if attempt == 2:
            stalled.set()
            time.sleep(10)
        sock.sendall(OK)

    _open(app, 2)
    script = (
        "import sys; from app.monitoring import webhook; from app.storage import Storage; "
        "webhook.deliver_pending(Storage(sys.argv[1]), sys.argv[2], timeout=30)"
    )
    with _ScriptedReceiver(stall_on_second) as receiver:
        run = subprocess.Popen(
            [sys.executable, "-c", script, app.config["DATABASE_URL"], receiver.url], cwd=ROOT
        )
        try:
            assert stalled.wait(30)
        finally:
            run.kill()
            run.wait()
        first, second = _deliveries(app)
        assert (first.status, first.attempts) == ("delivered", 1)
        assert (second.status, second.attempts) == ("pending", 1)  # claimed, never answered
        later = utcnow() + dt.timedelta(minutes=5)
        assert webhook.deliver_pending(storage, receiver.url, timeout=DEADLINE, now=later)["delivered"] == 1
    assert [header for header, _body in receiver.events] == [first.event_id, second.event_id, second.event_id]
