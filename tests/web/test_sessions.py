"""CookieSessions: Flask's signed-cookie sessions, read and written as Flask does."""

from __future__ import annotations

from pathlib import Path

from flask import session

from tests.helpers.app import make_test_app


def test_a_session_survives_between_requests_and_a_forged_cookie_is_an_empty_session(tmp_path: Path) -> None:
    app = make_test_app(tmp_path)

    def remember() -> str:
        session["seen"] = session.get("seen", 0) + 1
        return str(session["seen"])

    app.add_url_rule("/_remember", "_remember", remember)
    client = app.test_client()
    assert client.get("/_remember").get_data(as_text=True) == "1"
    assert client.get("/_remember").get_data(as_text=True) == "2"  # the cookie was signed and read back

    client.set_cookie("session", "forged.value.sig")
    assert client.get("/_remember").get_data(as_text=True) == "1"

    fresh = app.test_client()  # no Cookie header at all
    assert fresh.get("/_remember").get_data(as_text=True) == "1"


def test_a_rotated_secret_key_still_reads_sessions_signed_with_a_fallback(tmp_path: Path) -> None:
    app = make_test_app(tmp_path)

    def remember() -> str:
        session["seen"] = session.get("seen", 0) + 1
        return str(session["seen"])

    app.add_url_rule("/_remember", "_remember", remember)
    client = app.test_client()
    assert client.get("/_remember").get_data(as_text=True) == "1"
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "rotated"
    assert client.get("/_remember").get_data(as_text=True) == "2"
    app.config["SECRET_KEY_FALLBACKS"] = []
    client.get("/_remember")  # now signed with the new key only
    app.secret_key = "rotated-again"
    assert client.get("/_remember").get_data(as_text=True) == "1"  # an unknown key: a new session
