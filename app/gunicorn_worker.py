"""gunicorn's threaded worker with deadlines on reading a request, so slow clients cannot starve it.

Why: gunicorn's gthread worker parks idle connections in a poller, but once a request's first byte
arrives a thread reads the rest with a blocking socket and no timeout. A client that trickles its
headers (one byte every few seconds) holds that thread for as long as it likes; a few such clients
hold every thread. This worker gives each request HEADER_TIMEOUT seconds in all to send its request
line and headers (then the connection is dropped), and each read of the body BODY_TIMEOUT seconds
(then the application answers 408). Behind nginx (deploy/nginx.conf) the proxy buffers whole
requests first, so only a client that reaches gunicorn directly ever meets these limits.

    worker_class = "app.gunicorn_worker.DeadlineThreadWorker"   (gunicorn.conf.py)
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)

HEADER_TIMEOUT = float(os.environ.get("GUNICORN_HEADER_TIMEOUT", "10"))
BODY_TIMEOUT = float(os.environ.get("GUNICORN_BODY_TIMEOUT", "30"))


class SlowHeaders(NoMoreData):
    """The request line and headers did not arrive in time: gunicorn closes the connection quietly."""


class SlowBody(TimeoutError):
    """A read of the body waited too long: gunicorn's drain gives up, the app answers 408."""


class DeadlineSocket:
    """A client socket whose reads are bounded: a deadline for the headers, an idle limit for the body."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline: float | None = None
        self._idle: float | None = None

    def expect_headers(self, seconds: float) -> None:
        self._deadline, self._idle = time.monotonic() + seconds, None

    def expect_body(self, seconds: float) -> None:
        self._deadline, self._idle = None, seconds

    def recv(self, size: int, *flags: int) -> bytes:
        prior = self._sock.gettimeout()
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise SlowHeaders()
            self._sock.settimeout(remaining)
        elif self._idle is not None and prior is None:
            self._sock.settimeout(self._idle)  # a drain's own deadline, when set, is kept
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            if self._deadline is not None:
                log.info("dropped a client that sent no complete headers in %g s", HEADER_TIMEOUT)
                raise SlowHeaders() from None
            raise SlowBody() from None
        finally:
            # Writes stay as gunicorn made them (blocking): a socket left with a timeout sends a
            # large response in poll-and-send steps (bench_http, 1,000-row batch: median 358 ms, then 226).
            self._sock.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    """ThreadWorker whose connections read through DeadlineSocket."""

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.expect_headers(HEADER_TIMEOUT)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        conn.sock.expect_body(BODY_TIMEOUT)
        return super().handle_request(req, conn)
