"""Response hardening and database-contention errors, applied to every response of the app.

Why here and not in a blueprint: the headers must cover every page, every API answer and every
error page alike, and a locked or unreachable database must surface as a clear 503 rather than
as a bare 500 (or, worse, as a success whose log row was never written).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from sqlalchemy.exc import OperationalError

from app.storage import is_transient_database_error
from app.web.api.errors import ApiError
from app.web.errors import error_response
from app.web.headers import add_missing

log = logging.getLogger(__name__)

# No inline script and no eval: every script is a file under /static. Inline style attributes are
# allowed because the server-rendered SVG charts carry them.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

RETRY_AFTER_SECONDS = 2


def _add_security_headers(response: Response) -> Response:
    """Each security header the response does not already carry."""
    add_missing(response.headers, SECURITY_HEADERS.items())
    return response


def _driver_errors() -> tuple[type[BaseException], ...]:
    """Driver-level errors too: a hot path may use the DBAPI connection directly (the prediction log)."""
    errors: list[type[BaseException]] = [OperationalError, sqlite3.OperationalError]
    try:
        import psycopg  # optional: only installed for PostgreSQL

        errors.append(psycopg.OperationalError)
    except ImportError:  # PostgreSQL support not installed
        pass
    return tuple(errors)


def _database_unavailable(error: Exception):
    """A locked or unreachable database: 503 with Retry-After, JSON for the API, text elsewhere."""
    if not is_transient_database_error(error):
        raise error
    reason = str(getattr(error, "orig", None) or error).strip()
    log.warning("database unavailable on %s %s: %s", request.method, request.path, reason)
    message = "the database is busy or unreachable; nothing was recorded, retry shortly"
    details = [{"field": "database", "message": reason}]
    return error_response(ApiError(503, message, details, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refuse_foreign_origin() -> Any:
    """A browser's state-changing request from another site is refused, whatever its CSRF token.

    Browsers send Origin on every cross-site POST (forms and fetch alike); scripts such as curl send
    none and are judged by their token. Only the host is compared: behind a TLS proxy the scheme the
    app sees depends on PROXY_COUNT, the host does not. The API is covered too: a text/plain POST to
    /api/v1/actuals needs no CORS preflight.
    """
    if request.method not in STATE_CHANGING:
        return None
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if origin != "null" and urlsplit(origin).netloc.lower() == request.host.lower():
        return None
    log.warning("cross-site %s %s refused (Origin %s)", request.method, request.path, origin[:100])
    message = "cross-site request refused: the Origin header names another site"
    detail = {"field": "Origin", "message": f"expected {request.host_url.rstrip('/')}, got {origin[:100]}"}
    raise ApiError(403, message, [detail])


def init_app(app: Flask) -> None:
    """Security headers on every response; foreign origins refused; transient database errors become 503."""
    app.before_request(_refuse_foreign_origin)
    app.after_request(_add_security_headers)
    for error_class in _driver_errors():
        app.register_error_handler(error_class, _database_unavailable)
