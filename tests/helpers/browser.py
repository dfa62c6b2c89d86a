"""Serving a test app to a real browser on 127.0.0.1, and waiting for its HTMX."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve `app` with werkzeug in a thread on a free loopback port (browser tests); yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def wait_htmx(page) -> None:
    """Wait until the page has loaded HTMX (before clicking what it drives)."""
    page.wait_for_function("() => window.htmx !== undefined")
