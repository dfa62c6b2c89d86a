"""Flask's signed-cookie sessions, without their set-up cost on requests that carry no cookie.

Flask opens the session on every request: it builds an itsdangerous serializer (key derivation set-up
included) and parses the Cookie header before it knows whether there is a session at all. The JSON
API's callers send no cookies, so for them that is pure overhead; a request with a session cookie is
read exactly as Flask reads it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessions(SecureCookieSessionInterface):
    """Flask's SecureCookieSessionInterface: the serializer built once per key set, not per request;
    no Cookie header means a new, empty session without parsing anything."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is None:  # no secret key: sessions are off
                return None
            self._serializers = {key: serializer}  # the keys rotate rarely: keep the current set only
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.headers.get("Cookie") and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)
