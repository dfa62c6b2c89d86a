"""Alert notifications: queued delivery rows (written with the alert's change) posted to a webhook.

The JSON carries `text`, which Slack and Mattermost incoming webhooks show as the message, beside the
alert's fields and the delivery's `event_id` (also in the X-Storecast-Event-Id header). A failed post
is retried with a growing delay and the same event id; the row records attempts, the last error and
when it was delivered, so nothing is lost while the receiver is down.

Each post has one deadline for all of it (connecting, sending, the status line, the headers and the
reply): a receiver that trickles its answer cannot hold a job. Only a complete 2xx answer counts as
delivered. A delivery is claimed (its next attempt moved past the deadline) in a transaction of its
own before the post, so two runs never post the same event and no transaction stays open meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from app.storage import AlertDelivery, Storage, utcnow

log = logging.getLogger(__name__)

MAX_DELAY = dt.timedelta(hours=1)
BATCH = 50
EVENT_ID_HEADER = "X-Storecast-Event-Id"
MAX_REPLY_BYTES = 64 * 1024  # a receiver's answer body is read (to its end, or this far) before it counts
CLAIM_MARGIN = dt.timedelta(minutes=1)  # a claim outlives the deadline by this much (a crashed sender)


def retry_delay(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, ... at most an hour."""
    return min(dt.timedelta(seconds=30 * 2 ** min(max(attempts - 1, 0), 12)), MAX_DELAY)


class ReplyCutShort(http.client.HTTPException):
    """The receiver's answer ended inside its status line or headers."""


class _Deadline:
    """The time one delivery may take in all.

    The socket timeout alone bounds each wait, not their sum; this timer shuts the connection's
    socket down when the whole delivery has run too long, which ends any read or write in progress.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return max(self._ends - time.monotonic(), 0.01)

    def watch(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            sock = connection.sock
            if sock is not None and sock.fileno() != -1:
                with contextlib.suppress(OSError):  # the plain socket's, under TLS too: ends the blocked call
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WholeLines:
    """The reply's stream while its head is parsed: http.client takes the end of the stream for the
    end of the headers, so `HTTP/1.1 200` and a closed socket would read as a success."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def readline(self, limit: int = -1) -> bytes:
        line = self._stream.readline(limit)
        if not line.endswith(b"\n") and (limit < 0 or len(line) < limit):
            raise ReplyCutShort(f"the answer ended inside its status line or headers: {line[:80]!r}")
        return line

    def close(self) -> None:
        self._stream.close()


class _CheckedResponse(http.client.HTTPResponse):
    def begin(self) -> None:
        stream = self.fp
        self.fp = _WholeLines(stream)
        try:
            super().begin()
        finally:
            if self.fp is not None:
                self.fp = stream


class _DeadlineConnection:
    """Connects within what is left of the deadline and lets the deadline cut the socket."""

    response_class = _CheckedResponse

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._deadline = deadline

    def connect(self) -> None:
        self.timeout = self._deadline.remaining()
        self._deadline.watch(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req, deadline=self._deadline)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._context, deadline=self._deadline)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be re-sent as a GET without its body: a 3xx is a failed delivery."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _read_answer(response: http.client.HTTPResponse) -> None:
    """Read the answer's body to its end (at most MAX_REPLY_BYTES of it): one cut short before the
    length it announced raises IncompleteRead."""
    if response.length is not None and response.length <= MAX_REPLY_BYTES:
        response.read()
        return
    read = 0
    while read < MAX_REPLY_BYTES and (chunk := response.read(8192)):
        read += len(chunk)


def post_json(url: str, payload: dict, timeout: float, *, event_id: str | None = None) -> None:
    """POST the JSON and read the whole answer within `timeout` seconds in all; raise unless the
    answer is a complete 2xx (OSError, ValueError or http.client.HTTPException)."""
    headers = {"Content-Type": "application/json"}
    if event_id is not None:
        headers[EVENT_ID_HEADER] = event_id
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    with _Deadline(timeout) as deadline:
        opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline), _NoRedirects())
        try:
            with opener.open(request, timeout=timeout) as response:
                _read_answer(response)
                status = response.status
        except (OSError, http.client.HTTPException) as error:
            if deadline.expired and not isinstance(error, urllib.error.HTTPError):
                raise TimeoutError(f"no complete answer within {timeout:g} s") from error
            raise
    if not 200 <= status < 300:
        raise urllib.error.HTTPError(url, status, "unexpected status", response.headers, None)


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: str
    payload: dict[str, Any]
    attempts: int


def _claim(storage: Storage, delivery_id: int, now: dt.datetime, timeout: float) -> _Claimed | None:
    """Take the delivery for one attempt, or None when another run took it since it was listed."""
    claimed_until = now + dt.timedelta(seconds=timeout) + CLAIM_MARGIN
    with storage.session() as session:
        taken = session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == delivery_id,
                AlertDelivery.status == "pending",
                AlertDelivery.next_attempt_at <= now,
            )
            .values(attempts=AlertDelivery.attempts + 1, next_attempt_at=claimed_until)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return None
        row = session.execute(
            select(AlertDelivery.event_id, AlertDelivery.payload, AlertDelivery.attempts).where(
                AlertDelivery.id == delivery_id
            )
        ).one()
    return _Claimed(delivery_id, row.event_id, row.payload, row.attempts)


def _record(storage: Storage, claimed: _Claimed, now: dt.datetime, error: Exception | None) -> None:
    with storage.session() as session:
        pending = (AlertDelivery.id == claimed.id, AlertDelivery.status == "pending")
        if error is None:  # whichever attempt got through, the event is delivered
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now, "last_error": None}
            statement = update(AlertDelivery).where(*pending)
        else:  # unless a later claim of the same delivery has taken over
            values = {"last_error": str(error)[:500], "next_attempt_at": now + retry_delay(claimed.attempts)}
            statement = update(AlertDelivery).where(*pending, AlertDelivery.attempts == claimed.attempts)
        session.execute(statement.values(**values).execution_options(synchronize_session=False))


def deliver_pending(
    storage: Storage, url: str | None, *, timeout: float = 5.0, now: dt.datetime | None = None
) -> dict[str, int]:
    """Post the deliveries that are due; without a URL they are marked skipped (nobody to tell).

    The first failure ends the run: the receiver is down or slow, and the others wait for the next
    run rather than each waiting out the deadline.
    """
    now = now or utcnow()
    with storage.session() as session:
        due = session.scalars(
            select(AlertDelivery.id)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.id)
            .limit(BATCH)
        ).all()
        if not url:
            session.execute(
                update(AlertDelivery)
                .where(AlertDelivery.id.in_(due), AlertDelivery.status == "pending")
                .values(status="skipped")
                .execution_options(synchronize_session=False)
            )
            return {"due": len(due), "delivered": 0, "failed": 0}
    delivered = failed = 0
    for delivery_id in due:
        claimed = _claim(storage, delivery_id, now, timeout)
        if claimed is None:
            continue
        try:
            post_json(
                url, {**claimed.payload, "event_id": claimed.event_id}, timeout, event_id=claimed.event_id
            )
        except (OSError, ValueError, http.client.HTTPException) as error:  # a malformed URL is a ValueError
            _record(storage, claimed, now, error)
            log.warning(
                "webhook delivery %d (event %s) failed (attempt %d): %s",
                claimed.id,
                claimed.event_id,
                claimed.attempts,
                error,
            )
            failed += 1
            break
        _record(storage, claimed, now, None)
        delivered += 1
    return {"due": len(due), "delivered": delivered, "failed": failed}
