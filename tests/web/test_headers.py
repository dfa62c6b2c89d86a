"""add_missing: setdefault's behaviour for many headers at once."""

from __future__ import annotations

from werkzeug.datastructures import Headers

from app.web.headers import add_missing


def test_adds_only_the_headers_the_response_lacks_whatever_their_case() -> None:
    headers = Headers([("Content-Type", "application/json"), ("cache-control", "max-age=60")])
    add_missing(
        headers, [("X-Request-ID", "r-1"), ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY")]
    )
    assert list(headers) == [
        ("Content-Type", "application/json"),
        ("cache-control", "max-age=60"),
        ("X-Request-ID", "r-1"),
        ("X-Frame-Options", "DENY"),
    ]


def test_nothing_missing_leaves_the_headers_as_they_are() -> None:
    headers = Headers([("X-Request-ID", "mine")])
    add_missing(headers, [("x-request-id", "other")])
    assert list(headers) == [("X-Request-ID", "mine")]
