"""Security properties of the running app: headers, secrets, CSRF, admin tokens, artifact hashes, SQL.

Why: these are the properties a retailer's security review asks about, and each one is easy to lose
silently (an inline script, a new form without a token, an f-string in a query).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, select, text
from werkzeug.exceptions import HTTPException

from app.factory import create_app
from app.serving.holder import ModelUnavailable
from app.storage import PredictionLog, is_transient_database_error
from app.web.security import CONTENT_SECURITY_POLICY
from tests.helpers.admin import ADMIN_TOKEN, admin_headers
from tests.helpers.app import make_test_app
from tests.helpers.database import TEST_DATABASE_URL
from tests.helpers.registry import register_production

ROOT = Path(__file__).resolve().parent.parent
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_REFUSAL = re.compile(r"CSRF (session )?token (is|has)")  # Flask-WTF's CSRFError descriptions


def _policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def production_app(tmp_path, monkeypatch) -> Flask:
    """An app configured as in production: not testing, not debug, a secret key, CSRF on."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("STORECAST_INSTANCE", str(tmp_path / "instance"))
    app = make_test_app(
        tmp_path,
        TESTING=False,
        SECRET_KEY="production-secret",
        WTF_CSRF_ENABLED=True,
        STORECAST_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    assert not app.debug and not app.testing
    return app


# response headers


@pytest.mark.parametrize(
    "path", ["/api/v1/health", "/api/v1/openapi.json", "/no-such-page", "/api/v1/nope", "/"]
)
def test_every_response_carries_the_security_headers(production_app: Flask, path: str) -> None:
    response = production_app.test_client().get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    policy = _policy(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"], "no inline script, no eval, no outside host"
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert all("http" not in value for values in policy.values() for value in values), "no CDN allowed"


def test_templates_have_no_inline_script_or_event_handler() -> None:
    """What the CSP forbids the browser would block: catch it here rather than in a planner's browser."""
    offenders = []
    for template in ROOT.joinpath("templates").rglob("*.html"):
        source = template.read_text()
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", source, flags=re.DOTALL | re.IGNORECASE):
            attributes, body = match.groups()
            if (
                body.strip()
                and "application/json" not in attributes
                and "application/ld+json" not in attributes
            ):
                offenders.append(f"{template.relative_to(ROOT)}: inline <script>")
        for handler in re.findall(r"\son[a-z]+\s*=\s*[\"']", source, flags=re.IGNORECASE):
            offenders.append(f"{template.relative_to(ROOT)}: inline handler {handler.strip()}")
        if re.search(r"javascript:", source, flags=re.IGNORECASE):
            offenders.append(f"{template.relative_to(ROOT)}: javascript: URL")
    assert not offenders, offenders


def test_policy_constant_matches_the_header(production_app: Flask) -> None:
    response = production_app.test_client().get("/api/v1/health")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


# secret key, debug pages


def test_secret_key_is_required_outside_debug_and_tests(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("STORECAST_INSTANCE", str(tmp_path / "instance"))  # no instance/config.py here
    config = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "MODELS_DIR": str(tmp_path / "models")}
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(config)
    assert create_app({**config, "TESTING": True}).config["SECRET_KEY"]
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app(config).config["SECRET_KEY"] == "from-the-environment"


def test_an_unexpected_error_shows_no_debugger_and_no_traceback(production_app: Flask) -> None:
    @production_app.get("/_boom")
    def boom():
        raise ZeroDivisionError("secret internals")

    @production_app.get("/api/v1/_boom")
    def api_boom():
        raise ZeroDivisionError("secret internals")

    client = production_app.test_client()
    for path in ("/_boom", "/api/v1/_boom"):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 500
        assert "Traceback" not in body and "secret internals" not in body and "Werkzeug" not in body
        assert "__debugger__" not in body
    assert client.get("/api/v1/_boom").is_json


# CSRF and admin tokens


def _url_for_rule(rule) -> str:
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{name}>", "1", url)
    return url


def _form_rules(app: Flask) -> list:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.methods & STATE_CHANGING and not rule.rule.startswith(("/api/", "/static"))
    ]


def test_every_state_changing_form_requires_a_csrf_token(production_app: Flask) -> None:
    rules = _form_rules(production_app)
    client = production_app.test_client()
    for rule in rules:
        response = client.post(_url_for_rule(rule), data={"action": "promote", "version": "1"})
        assert response.status_code == 400, f"{rule.rule} accepted a post without a CSRF token"
        assert CSRF_REFUSAL.search(response.get_data(as_text=True)), rule.rule


def test_a_form_with_a_valid_csrf_token_passes_the_check(production_app: Flask) -> None:
    production_app.add_url_rule("/_csrf", "_csrf", lambda: generate_csrf())
    client = production_app.test_client()
    token = client.get("/_csrf").get_data(as_text=True)
    for rule in _form_rules(production_app):
        response = client.post(_url_for_rule(rule), data={"csrf_token": token})
        assert not CSRF_REFUSAL.search(response.get_data(as_text=True)), rule.rule


ADMIN_API = [
    ("/api/v1/models/1/promote", {"reason": "test"}),
    ("/api/v1/models/rollback", {"reason": "test"}),
    ("/api/v1/models/1/archive", {"reason": "test"}),
    ("/api/v1/actuals", {"rows": []}),
    ("/api/v1/alerts/1/acknowledge", {}),
    ("/api/v1/alerts/1/resolve", {"by": "test"}),
]


@pytest.mark.parametrize(("path", "body"), ADMIN_API)
def test_admin_api_actions_need_the_admin_token(production_app: Flask, path: str, body: dict) -> None:
    assert _routes_a_post(production_app, path), f"no route takes POST {path}"
    client = production_app.test_client()
    missing = client.post(path, json=body)
    assert missing.status_code == 401 and missing.is_json
    wrong = client.post(path, json=body, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 403 and wrong.is_json
    right = client.post(path, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert right.status_code not in (401, 403)
    assert right.status_code < 500


# What a POST may do without the admin token: compute forecasts (logged as predictions), nothing else.
READ_ONLY_POSTS = {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/forecast"}


def test_no_write_is_open_on_a_server_without_an_admin_token(tmp_path) -> None:
    app = make_test_app(tmp_path)  # STORECAST_ADMIN_TOKEN unset, as before the first set-up wrote one
    client = app.test_client()
    writes = [
        rule for rule in _api_rules(app) if rule.methods & STATE_CHANGING and rule.rule not in READ_ONLY_POSTS
    ]
    assert {rule.rule for rule in writes} >= {"/api/v1/actuals", "/api/v1/models/rollback"}
    for rule in writes:
        anonymous = client.post(_url_for_rule(rule), json={"rows": [{"store": 1}]})
        assert anonymous.status_code == 401, rule.rule
        guessed = client.post(_url_for_rule(rule), json={}, headers={"Authorization": "Bearer guess"})
        assert guessed.status_code == 403 and "not set" in guessed.get_json()["error"], rule.rule


def _api_rules(app: Flask) -> list:
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]


def _routes_a_post(app: Flask, path: str) -> bool:
    """Whether a POST to `path` reaches a view, matched by the URL map as a request is (whatever the
    rule's text or converters)."""
    try:
        app.url_map.bind("localhost").match(path, method="POST")
    except HTTPException:
        return False
    return True


def test_the_models_page_action_needs_the_admin_token(production_app: Flask) -> None:
    assert _routes_a_post(production_app, "/models/action"), "no route takes POST /models/action"
    production_app.add_url_rule("/_csrf", "_csrf", lambda: generate_csrf())
    client = production_app.test_client()
    token = client.get("/_csrf").get_data(as_text=True)
    form = {"csrf_token": token, "action": "rollback", "version": "1", "reason": "x"}
    assert client.post("/models/action", data=form).status_code == 401
    assert client.post("/models/action", data={**form, "token": "wrong"}).status_code == 403


# artifacts, SQL


def test_an_artifact_whose_hash_differs_from_the_registry_is_never_loaded(tmp_path, small_artifact) -> None:
    import shutil

    tampered = tmp_path / "tampered.joblib"
    shutil.copy(small_artifact.path, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0 appended by an attacker")
    shutil.copy(small_artifact.metadata_path, tmp_path / "tampered.json")
    app = make_test_app(tmp_path)
    register_production(app, dataclasses.replace(small_artifact, path=tampered))
    with pytest.raises(ModelUnavailable):
        app.extensions["model_holder"].get()
    response = app.test_client().post("/api/v1/predict", json={"store": 1, "dept": 1, "date": "2012-11-02"})
    assert response.status_code == 503 and response.is_json


SQL_CALL = re.compile(
    r"\b(text|exec_driver_sql|execute|executescript)\(\s*(f[\"']|[\"'][^\"']*[\"']\s*(%|\.format))"
)


def test_sql_is_built_only_from_the_orm_or_bound_parameters() -> None:
    """No f-string, %-formatting or .format() in a raw SQL call under app/ or migrations/."""
    offenders = []
    for path in [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("migrations").rglob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if SQL_CALL.search(line) and "PRAGMA" not in line:  # PRAGMA values are module constants
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_hostile_text_in_a_store_field_is_a_422_and_touches_no_table(model_app: Flask) -> None:
    client = model_app.test_client()
    for store in ("1; DROP TABLE prediction_log; --", "1' OR '1'='1", "1 UNION SELECT 1"):
        response = client.post("/api/v1/predict", json={"store": store, "dept": 1, "date": "2012-11-02"})
        assert response.status_code == 422, store
        assert "store" in {d["field"] for d in response.get_json()["details"]}
    with model_app.extensions["storage"].session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == 0


# a locked database


def test_transient_database_errors_are_recognised() -> None:
    from sqlalchemy.exc import OperationalError

    assert is_transient_database_error(
        OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    )
    assert not is_transient_database_error(OperationalError("SELECT", {}, Exception("no such column: x")))


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's file lock; PostgreSQL locks rows, not files")
def test_a_locked_database_answers_503_and_loses_nothing_silently(
    tmp_path, small_artifact, monkeypatch
) -> None:
    """Held past the busy timeout: a clear 503 and no row; released within it: served and logged."""
    import app.storage as storage_module

    monkeypatch.setattr(storage_module, "SQLITE_BUSY_TIMEOUT_MS", 300)
    app = make_test_app(tmp_path, TESTING=False)
    register_production(app, small_artifact)
    client = app.test_client()
    dept = app.extensions["model_holder"].get().departments(1)[0]
    body = {"store": 1, "dept": dept, "date": "2012-11-02"}
    assert client.post("/api/v1/predict", json=body).status_code == 200  # model loaded, warm

    database = str(tmp_path / "storecast.db")
    locker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        response = client.post("/api/v1/predict", json=body)
    finally:
        locker.execute("ROLLBACK")
    assert response.status_code == 503 and response.is_json
    assert response.headers["Retry-After"]
    assert "database" in response.get_json()["error"]

    locker.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.1, lambda: locker.execute("ROLLBACK")).start()
    started = time.monotonic()
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert time.monotonic() - started >= 0.05  # it waited for the lock rather than failing
    time.sleep(0.1)
    locker.close()
    with app.extensions["storage"].session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == 2  # 200s only
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"


requires_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="STORECAST_TEST_DATABASE_URL unset (scripts/test.sh sets it)"
)


@requires_postgresql
def test_a_locked_postgresql_table_answers_503_with_retry_after_within_seconds(
    tmp_path, small_artifact
) -> None:
    """Another session holds ACCESS EXCLUSIVE on the table a request writes: the request gives up at
    the lock timeout with 503 + Retry-After, on the API and the page alike, and stores nothing."""
    from sqlalchemy import create_engine

    app = make_test_app(tmp_path, TESTING=False, WTF_CSRF_ENABLED=False)
    register_production(app, small_artifact)
    token = admin_headers(app)  # writing actual sales needs the admin token
    client = app.test_client()
    served = app.extensions["model_holder"].get()
    store = served.stores()[0]
    dept = served.departments(store)[0]
    body = {"store": store, "dept": dept, "date": "2012-11-02"}
    week = served.data_through + dt.timedelta(weeks=1)
    actual = f"Store,Dept,Date,Weekly_Sales,IsHoliday\n{store},{dept},{week},100.00,FALSE\n"
    assert client.post("/api/v1/predict", json=body).status_code == 200  # model loaded, warm
    requests = {
        "prediction_log": [
            lambda: client.post("/api/v1/predict", json=body),
            lambda: client.post("/", data={**body, "weeks": "1"}),  # the forecast page
        ],
        "actual_sales": [
            lambda: client.post("/api/v1/actuals", data=actual, content_type="text/csv", headers=token)
        ],
    }

    locker = create_engine(app.config["DATABASE_URL"])
    try:
        for table, sends in requests.items():
            with locker.connect() as connection:
                connection.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                for send in sends:
                    started = time.monotonic()
                    response = send()
                    elapsed = time.monotonic() - started
                    assert response.status_code == 503, (table, response.get_data(as_text=True)[:300])
                    assert response.headers["Retry-After"]
                    assert 1.5 < elapsed < 5.0, (table, elapsed)  # the lock timeouts, not the lock's end
                connection.rollback()
    finally:
        locker.dispose()
    with app.extensions["storage"].session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == 1  # the warm-up only
    answer = client.post("/api/v1/actuals", data=actual, content_type="text/csv", headers=token)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]


def test_an_htmx_form_refused_for_its_csrf_token_gets_the_expired_notice(production_app: Flask) -> None:
    response = production_app.test_client().post("/", data={"store": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#flash" and response.headers["HX-Reswap"] == "outerHTML"
    assert "session has expired" in response.get_data(as_text=True)


def test_a_state_changing_request_from_another_origin_is_refused(production_app: Flask) -> None:
    production_app.add_url_rule("/_csrf_origin", "_csrf_origin", lambda: generate_csrf())
    client = production_app.test_client()
    token = client.get("/_csrf_origin").get_data(as_text=True)
    form = {"csrf_token": token, "action": "rollback", "token": ADMIN_TOKEN}
    for origin in ("https://evil.example", "null", "http://localhost.evil.example"):
        refused = client.post("/models/action", data=form, headers={"Origin": origin})
        assert refused.status_code == 403 and refused.mimetype == "text/html", origin
        assert "cross-site request refused" in refused.get_data(as_text=True)  # on the error page
    # text/plain is a "simple" cross-site post (no preflight): refused on the API too, with JSON
    api = client.post(
        "/api/v1/actuals", data="Store,Dept,Date,Weekly_Sales,IsHoliday\n", content_type="text/plain",
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {ADMIN_TOKEN}"},
    )  # fmt: skip
    assert api.status_code == 403 and api.get_json()["details"][0]["field"] == "Origin"
    same = client.post("/models/action", data=form, headers={"Origin": "http://localhost"})
    assert same.status_code != 403
    assert client.post("/models/action", data=form).status_code != 403  # no Origin: the token decides
    assert client.get("/api/v1/health", headers={"Origin": "https://evil.example"}).status_code == 200


def test_the_session_cookie_is_samesite_lax_and_httponly(production_app: Flask, tmp_path) -> None:
    production_app.add_url_rule("/_csrf_cookie", "_csrf_cookie", lambda: generate_csrf())
    cookie = production_app.test_client().get("/_csrf_cookie").headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" not in cookie
    secure = make_test_app(tmp_path / "tls", SESSION_COOKIE_SECURE=True)
    secure.add_url_rule("/_csrf_cookie", "_csrf_cookie", lambda: generate_csrf())
    assert "Secure" in secure.test_client().get("/_csrf_cookie").headers["Set-Cookie"]
