"""Admin authentication for the API and the forms: the server's STORECAST_ADMIN_TOKEN, in constant time.

- no token presented                 -> 401 (with `WWW-Authenticate: Bearer`)
- a token presented, but wrong       -> 403
- a token presented, none configured -> 403 "admin actions are disabled" (nothing can be right)

Every write goes through here (actual sales, alerts, the registry): a server without a token accepts
none. `make run` writes a token to the instance configuration on first set-up.
"""

from __future__ import annotations

import hmac
import re
from pathlib import PurePath
from typing import Any

from flask import current_app, request

from app.web.api.errors import ApiError

ADMIN_ACTOR = "admin-token"


class AdminDenied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_admin_token(presented: str | None) -> None:
    """Raise AdminDenied (401 or 403) unless `presented` is the configured admin token."""
    presented = (presented or "").strip()  # a pasted token's stray space, as the API's bearer header
    if not presented:
        raise AdminDenied(401, "admin token required: send Authorization: Bearer <STORECAST_ADMIN_TOKEN>")
    configured = current_app.config.get("STORECAST_ADMIN_TOKEN")
    if not configured:
        raise AdminDenied(403, "admin actions are disabled: STORECAST_ADMIN_TOKEN is not set on the server")
    if not hmac.compare_digest(presented.encode("utf-8"), str(configured).encode("utf-8")):
        raise AdminDenied(403, "wrong admin token")


def admin_actor(declared: Any) -> str:
    """Who to record: the token's name, plus the name the caller gave (unverified, so kept in brackets)."""
    declared = str(declared or "").strip()
    return f"{ADMIN_ACTOR} ({declared[:40]})" if declared else ADMIN_ACTOR


def bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_admin() -> None:
    """Return when the request carries the admin bearer token; otherwise raise the 401 or 403."""
    try:
        check_admin_token(bearer_token())
    except AdminDenied as denied:
        challenge = {"WWW-Authenticate": 'Bearer realm="storecast admin"'} if denied.status == 401 else {}
        raise ApiError(
            denied.status, denied.message, [{"field": "Authorization", "message": denied.message}], challenge
        ) from None


SERVER_PATH_FIELDS = ("artifact_path", "data_source")


def path_name(value: Any) -> Any:
    """A server path as its last part (`storecast-2026....joblib`, `walmart`); other values unchanged."""
    if not isinstance(value, str) or ("/" not in value and "\\" not in value):
        return value
    return PurePath(value.replace("\\", "/")).name or value


# An absolute path of two parts or more (/app/models/x.joblib), quoted or not; "/ready" is left alone.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")


def without_paths(text: Any) -> Any:
    """Free text (an error, a traceback's last line) with every server path cut to its file name."""
    return _SERVER_PATH.sub(r"\1", text) if isinstance(text, str) else text


def last_line(text: Any) -> str:
    """A stored error's last line (a traceback's exception) without server paths, for anonymous pages."""
    lines = str(text or "").strip().splitlines()
    return without_paths(lines[-1]) if lines else ""


def is_admin() -> bool:
    """The request carries the configured admin bearer token."""
    try:
        check_admin_token(bearer_token())
    except AdminDenied:
        return False
    return True


def public_row(row: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    """A registry row for the caller: artifact and data names (and errors without server paths) for
    anyone, whole server paths for an admin."""
    if admin:
        return row
    public = {**row, **{name: path_name(row[name]) for name in SERVER_PATH_FIELDS if name in row}}
    if "error" in public:
        public["error"] = without_paths(public["error"])
    return public
