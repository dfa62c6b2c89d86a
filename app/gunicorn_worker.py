"""gunicorn's threaded worker, with requests read ahead in its poller, so slow clients cannot starve it.

Why: gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and the
thread reads the rest with a blocking socket. A client that trickles its headers (one byte every few
seconds) holds that thread; a few such clients hold every thread. Here the worker's main loop reads a
request's line and headers, and a body of up to READ_AHEAD bytes, without blocking, as they arrive
(for new and kept-alive connections alike); a thread only gets a request it can serve at once. A client
has HEADER_TIMEOUT seconds in all for its request line and headers (then the connection is dropped),
and BODY_TIMEOUT seconds between two pieces of its body (then the application answers 408). A larger
or chunked body, or one sent after 100-continue, is read by the thread, each read bounded the same way.
So a worker needs few threads (gunicorn.conf.py): they share one GIL, and a slow client holds none.
With TLS or an HTTP/2 preface configured in gunicorn itself, the worker is gthread as it is, without
these limits: terminate TLS at the proxy.
Behind nginx (deploy/nginx.conf) the proxy buffers whole requests first, so only a client that reaches
gunicorn directly ever meets these limits.

    worker_class = "app.gunicorn_worker.DeadlineThreadWorker"   (gunicorn.conf.py)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger(__name__)

HEADER_TIMEOUT = float(os.environ.get("GUNICORN_HEADER_TIMEOUT", "10"))
BODY_TIMEOUT = float(os.environ.get("GUNICORN_BODY_TIMEOUT", "30"))
READ_AHEAD = 1 << 20  # a body up to this size is read in the poller, a larger one by the thread
HEAD_LIMIT = 64 << 10  # a head longer than this goes to gunicorn's parser, which refuses it
STALLED = 0.001  # a body that stalled in the poller: the thread's first read gives up at once
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_EXPECT = re.compile(rb"^expect:", re.IGNORECASE | re.MULTILINE)


class SlowHeaders(NoMoreData):
    """The request line and headers did not arrive in time: gunicorn closes the connection quietly."""


class SlowBody(TimeoutError):
    """A read of the body waited too long: gunicorn's drain gives up, the app answers 408."""


class DeadlineSocket:
    """A client socket whose reads are bounded: a deadline for the headers, an idle limit for the body."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock
        self._deadline: float | None = None
        self._idle: float | None = None

    def expect_headers(self, seconds: float) -> None:
        self._deadline, self._idle = time.monotonic() + seconds, None

    def expect_body(self, seconds: float) -> None:
        self._deadline, self._idle = None, seconds

    def recv(self, size: int, *flags: int) -> bytes:
        prior = self.raw.gettimeout()
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise SlowHeaders()
            self.raw.settimeout(remaining)
        elif self._idle is not None and prior is None:
            self.raw.settimeout(self._idle)  # a drain's own deadline, when set, is kept
        try:
            return self.raw.recv(size, *flags)
        except TimeoutError:
            if self._deadline is not None:
                log.info("dropped a client that sent no complete headers in %g s", HEADER_TIMEOUT)
                raise SlowHeaders() from None
            raise SlowBody() from None
        finally:
            # Writes stay as gunicorn made them (blocking): a socket left with a timeout sends a
            # large response in poll-and-send steps (bench_http, 1,000-row batch: median 358 ms, then 226).
            self.raw.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class ReadAhead:
    """What the poller has read of a connection's next request, and by when the rest must come."""

    __slots__ = ("data", "wanted", "deadline", "stalled")

    def __init__(self) -> None:
        self.data = bytearray()
        self.wanted: int | None = None  # bytes of head and body to read here, once the head is in
        self.deadline = time.monotonic() + HEADER_TIMEOUT
        self.stalled = False

    def take(self, data: bytes) -> bool:
        """Add bytes; True once the request can go to a thread."""
        self.data += data
        if self.wanted is None:
            end = _HEAD_END.search(self.data)
            if end is None:
                return len(self.data) > HEAD_LIMIT
            head = bytes(self.data[: end.start()])
            length = _CONTENT_LENGTH.search(head)
            if length is None or _EXPECT.search(head) or int(length.group(1)) > READ_AHEAD:
                return True  # no body, a chunked or large one, or one the client sends after 100-continue
            self.wanted = end.end() + int(length.group(1))
        self.deadline = time.monotonic() + BODY_TIMEOUT  # the body: an idle limit, as the thread's reads
        return len(self.data) >= self.wanted


class DeadlineThreadWorker(ThreadWorker):
    """ThreadWorker that reads requests ahead in its poller and bounds every read of a connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[Any, ReadAhead] = {}  # connections whose request is still arriving
        # Plain HTTP/1 only: TLS and an HTTP/2 preface are read by gthread's own thread (TConn.init).
        http2 = getattr(self.cfg, "http2_cleartext", None)
        self.reads_ahead = not self.cfg.is_ssl and http2 in (None, "off", "upgrade")

    def accept(self, listener: Any) -> None:
        if not self.reads_ahead:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._read_ahead(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request: read ahead too, not handed to a thread at once."""
        if not self.reads_ahead:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_ahead(conn)

    def _read_ahead(self, conn: Any) -> None:
        self.reading[conn] = ReadAhead()
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))

    def _on_bytes(self, conn: Any, client: Any) -> None:
        ahead = self.reading[conn]
        sock = conn.sock.raw if isinstance(conn.sock, DeadlineSocket) else conn.sock  # no deadline here
        try:
            data = sock.recv(READ_AHEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._stop_reading(conn)
            self._drop(conn)
        elif ahead.take(data):
            self._stop_reading(conn)
            self._to_thread(conn, ahead)

    def _stop_reading(self, conn: Any) -> None:
        del self.reading[conn]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _drop(self, conn: Any) -> None:
        """Close a connection the poller was reading, and count it gone."""
        self.nr_conns -= 1
        conn.close()

    def _to_thread(self, conn: Any, ahead: ReadAhead) -> None:
        conn.read_ahead = ahead
        conn.data_ready = True  # gthread's own wait for a first byte is over
        self.enqueue_req(conn)

    def murder_pending(self) -> None:
        """Drop connections whose headers are late; give a thread those whose body stalled (a 408)."""
        super().murder_pending()
        now = time.monotonic()
        for conn, ahead in [item for item in self.reading.items() if item[1].deadline <= now]:
            self._stop_reading(conn)
            if ahead.wanted is None:
                log.info("dropped a client that sent no complete headers in %g s", HEADER_TIMEOUT)
                self._drop(conn)
            else:
                ahead.stalled = True
                self._to_thread(conn, ahead)

    def handle(self, conn: Any) -> Any:
        if not self.reads_ahead:
            return super().handle(conn)
        ahead: ReadAhead | None = conn.read_ahead
        conn.read_ahead = None
        conn.stalled = ahead is not None and ahead.stalled
        conn.sock.setblocking(True)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        if ahead is not None and ahead.data:
            conn.init()  # the parser, now, to be given the bytes read ahead
            conn.parser.unreader.unread(bytes(ahead.data))
        conn.sock.expect_headers(HEADER_TIMEOUT)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if self.reads_ahead:
            conn.sock.expect_body(STALLED if conn.stalled else BODY_TIMEOUT)
        return super().handle_request(req, conn)
