"""The monitoring page and its partials, acknowledge with CSRF, the upload form, and /metrics."""

from __future__ import annotations

import io
import re

import pytest

from app.monitoring import actuals, alerts
from app.monitoring.drift_report import drift_check
from app.monitoring.prediction_log import log_predictions
from app.storage import Alert, DriftResult, PerformanceSnapshot
from tests.helpers.clock import at
from tests.helpers.predictions import simple_predictions


@pytest.fixture
def busy_app(mon_app, small_dataset, covariate_frame):
    """Requests, predictions, a drift report, performance snapshots and an open alert."""
    from app.monitoring.drift import reference_from_dataset
    from tests.helpers.drift import shifted
    from tests.helpers.predictions import prediction_rows

    client = mon_app.test_client()
    for _ in range(5):
        client.get("/api/v1/health")
    with mon_app.app_context():
        window = shifted(covariate_frame.sample(300, random_state=2))
        rows = prediction_rows(window.assign(prediction=window["weekly_sales"]))
        log_predictions(mon_app.extensions["storage"], rows, source="api", request_id="r", latency_ms=3)
    storage = mon_app.extensions["storage"]
    drift_check(storage, reference_from_dataset(small_dataset), version="v1", start=at(1), end=at(-1))
    with storage.session() as session:
        for i in range(6):
            session.add(PerformanceSnapshot(
                window_start=at(1.5 - i * 0.25), window_end=at(1.25 - i * 0.25), model_version="v1",
                requests=100 + i, errors_4xx=i, errors_5xx=i % 2, latency_p50=5.0, latency_p95=20.0 + i,
                latency_p99=40.0, predictions=300, matched_actuals=20, live_wmae=1500.0 + 50 * i,
                backtest_wmae=1400.0, coverage_80=0.78, coverage_95=0.93,
            ))  # fmt: skip
        alerts.evaluate(session, mon_app.config)
    return mon_app


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_page_renders_every_panel(busy_app):
    response = busy_app.test_client().get("/monitoring")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("Health", "Alerts", "dataset drift", "temperature", "Kolmogorov-Smirnov", "Import actuals"):
        assert text in html
    assert html.count("<svg") >= 5  # volume, latency, errors, accuracy, coverage
    assert 'hx-trigger="every 30s"' in html
    assert "<script>" not in html.replace('<script src="', "")  # no inline scripts (CSP)


def test_empty_page_renders(mon_app):
    html = mon_app.test_client().get("/monitoring").get_data(as_text=True)
    assert "No performance snapshot yet" in html and "No drift check yet" in html and "never" in html


@pytest.mark.parametrize("partial", ["health", "charts", "drift", "alerts"])
def test_partials(busy_app, partial):
    response = busy_app.test_client().get(f"/monitoring/partials/{partial}")
    assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)


def test_feature_partial_draws_reference_and_current(busy_app):
    with busy_app.extensions["storage"].session() as session:
        numeric = session.query(DriftResult).filter_by(feature="temperature").one().id
        categorical = session.query(DriftResult).filter_by(feature="is_holiday").one().id
    client = busy_app.test_client()
    for result_id in (numeric, categorical):
        html = client.get(f"/monitoring/drift/{result_id}").get_data(as_text=True)
        assert "<svg" in html and "reference" in html and "current" in html
    assert client.get("/monitoring/drift/999999").status_code == 404


ADMIN = "alerts-admin-token"


def _first_open(app) -> int:
    with app.extensions["storage"].session() as session:
        return alerts.open_alerts(session, "drift")[0].id


def _alert(app, alert_id: int):
    with app.extensions["storage"].session() as session:
        alert = session.get(Alert, alert_id)
        return alerts.alert_dict(alert)


def test_acknowledge_and_resolve_need_the_csrf_token_and_the_admin_token(busy_app):
    busy_app.config["STORECAST_ADMIN_TOKEN"] = ADMIN
    client = busy_app.test_client()
    alert_id = _first_open(busy_app)
    assert client.post(f"/monitoring/alerts/{alert_id}/acknowledge").status_code == 400
    token = _csrf(client.get("/monitoring").get_data(as_text=True))
    anonymous = client.post(f"/monitoring/alerts/{alert_id}/acknowledge", data={"csrf_token": token})
    assert anonymous.status_code == 401 and "admin token required" in anonymous.get_data(as_text=True)
    wrong = client.post(
        f"/monitoring/alerts/{alert_id}/resolve",
        data={"csrf_token": token, "admin_token": "guess"},
        headers={"HX-Request": "true"},
    )
    assert wrong.status_code == 403 and 'data-testid="alert-error"' in wrong.get_data(as_text=True)
    assert _alert(busy_app, alert_id)["acknowledged_at"] is None
    assert _alert(busy_app, alert_id)["resolved_at"] is None

    response = client.post(
        f"/monitoring/alerts/{alert_id}/acknowledge",
        data={"csrf_token": token, "admin_token": ADMIN + " ", "by": "Dana"},
    )
    assert response.status_code == 303
    assert _alert(busy_app, alert_id)["acknowledged_by"] == "admin-token (Dana)"
    response = client.post(
        f"/monitoring/alerts/{alert_id}/resolve",
        data={"csrf_token": token, "admin_token": ADMIN},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Past alerts" in response.get_data(as_text=True)
    assert "by admin-token" in response.get_data(as_text=True)
    assert _alert(busy_app, alert_id)["resolved_by"] == "admin-token"


def test_alert_buttons_are_disabled_without_an_admin_token_on_the_server(busy_app):
    client = busy_app.test_client()
    html = client.get("/monitoring").get_data(as_text=True)
    assert 'data-testid="alerts-disabled"' in html and "disabled title=" in html
    token = _csrf(html)
    alert_id = _first_open(busy_app)
    response = client.post(
        f"/monitoring/alerts/{alert_id}/resolve", data={"csrf_token": token, "admin_token": "anything"}
    )
    assert response.status_code == 403 and "admin actions are disabled" in response.get_data(as_text=True)
    assert _alert(busy_app, alert_id)["resolved_at"] is None


def test_the_alerts_api_needs_the_bearer_token_and_records_who(busy_app):
    busy_app.config["STORECAST_ADMIN_TOKEN"] = ADMIN
    client = busy_app.test_client()
    alert_id = _first_open(busy_app)
    for action in ("acknowledge", "resolve"):
        anonymous = client.post(f"/api/v1/alerts/{alert_id}/{action}")
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = client.post(f"/api/v1/alerts/{alert_id}/{action}", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 403
    assert _alert(busy_app, alert_id)["resolved_at"] is None
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    acknowledged = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "ops bot"}, headers=bearer
    )
    assert acknowledged.status_code == 200
    assert acknowledged.get_json()["acknowledged_by"] == "admin-token (ops bot)"
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=bearer)
    assert resolved.status_code == 200 and resolved.get_json()["resolved_by"] == "admin-token"
    assert client.post("/api/v1/alerts/999999/resolve", headers=bearer).status_code == 404


def test_upload_form_imports_and_shows_errors(mon_app):
    mon_app.config["STORECAST_ADMIN_TOKEN"] = ADMIN
    client = mon_app.test_client()
    token = _csrf(client.get("/monitoring").get_data(as_text=True))
    good = b"Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,10,FALSE\n"
    form = {"csrf_token": token, "admin_token": ADMIN}
    response = client.post(
        "/monitoring/actuals",
        data={**form, "file": (io.BytesIO(good), "week.csv")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "1 inserted" in response.get_data(as_text=True)
    bad = b"Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,ten,FALSE\n"
    response = client.post("/monitoring/actuals", data={**form, "file": (io.BytesIO(bad), "bad.csv")})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "line 2, column Weekly_Sales" in html and "<html" in html


def test_upload_form_needs_the_token_and_corrects_stored_weeks_only_when_ticked(mon_app):
    client = mon_app.test_client()
    token = _csrf(client.get("/monitoring").get_data(as_text=True))
    week = b"Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,10,FALSE\n"

    def upload(body: bytes, **fields: str):
        data = {"csrf_token": token, **fields, "file": (io.BytesIO(body), "week.csv")}
        return client.post("/monitoring/actuals", data=data, headers={"HX-Request": "true"})

    refused = upload(week)  # no token configured: no write is open
    assert refused.status_code == 403 and "admin token required" in refused.get_data(as_text=True)
    mon_app.config["STORECAST_ADMIN_TOKEN"] = ADMIN
    assert upload(week).status_code == 403
    assert upload(week, admin_token=ADMIN).status_code == 200
    changed = week.replace(b",10,", b",-5,")
    overwrite = upload(changed, admin_token=ADMIN)
    text = overwrite.get_data(as_text=True)
    assert (
        overwrite.status_code == 422
        and "line 2, column Weekly_Sales" in text
        and "correct stored weeks" in text
    )
    no_reason = upload(changed, admin_token=ADMIN, correct="true")
    assert no_reason.status_code == 422 and "needs a reason" in no_reason.get_data(as_text=True)
    corrected = upload(changed, admin_token=ADMIN, correct="true", reason="returns", by="ana")
    assert corrected.status_code == 200 and "recorded as corrections" in corrected.get_data(as_text=True)
    with mon_app.extensions["storage"].session() as session:
        (record,) = actuals.corrections(session)
        assert (record.old_weekly_sales, record.new_weekly_sales) == (10.0, -5.0)
        assert (record.corrected_by, record.reason) == ("admin-token (ana)", "returns")


def test_metrics_in_prometheus_text_format(busy_app):
    client = busy_app.test_client()
    with busy_app.app_context():
        log_predictions(
            busy_app.extensions["storage"], simple_predictions(2), source="page", request_id="m", latency_ms=1
        )
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "# TYPE storecast_http_requests_total counter" in text
    assert re.search(
        r'storecast_http_requests_total\{endpoint="/api/v1/health",method="GET",status="200"\} 5.0',
        text,
    )
    assert re.search(
        r"storecast_http_request_duration_seconds_bucket"
        r'\{endpoint="/api/v1/health",le="\+Inf",method="GET"\} 5.0',
        text,
    )
    assert "# TYPE storecast_http_request_duration_seconds histogram" in text
    assert re.search(r'storecast_predictions_served_total\{source="page"\} 2.0', text)
    assert 'storecast_dataset_drift{model_version="v1"} 1.0' in text
    assert 'storecast_live_wmae{model_version="v1"} 1750.0' in text
    sample = re.compile(
        r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?([0-9.e+-]+|NaN|\+Inf)$'
    )
    for line in text.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line


@pytest.mark.parametrize("path", ["/monitoring/drift/6661574918636468", "/api/v1/runs/6661574918636468"])
def test_ids_past_the_integer_range_are_not_found(mon_app, path):
    """Ids from a URL that no INTEGER column can hold are a 404 on every database, not an overflow."""
    assert mon_app.test_client().get(path).status_code == 404


def test_series_bias_notices_are_one_compact_table_beside_the_alert_cards(mon_app):
    with mon_app.extensions["storage"].session() as session:
        alerts.open_alert(session, "degradation", "warning", "lag 1 is off", key="lag 1")
        for dept in (3, 4):
            alerts.open_alert(
                session,
                "bias",
                "info",
                f"store 7 dept {dept}: biased",
                key=f"series 7-{dept}",
                store=7,
                dept=dept,
            )
    html = mon_app.test_client().get("/monitoring/partials/alerts").get_data(as_text=True)
    assert "Persistently biased series (2, info)" in html
    assert html.count('class="mon-alert ') == 1 and "lag 1 is off" in html
    assert html.count('data-testid="alert-series"') == 2  # each notice links to its series page


def _loop_alerts(storage) -> None:
    """A store warning, a series warning, a department warning and a feed warning, as the loop opens them."""
    with storage.session() as session:
        alerts.open_alert(session, "store_total", "warning", "store 20: total low",
                          {"stores": [20], "url": "/store?store=20"}, key="store 20", store=20)  # fmt: skip
        alerts.open_alert(session, "series", "warning", "store 2 dept 92: low",
                          {"url": "/series/2/92"}, key="series 2-92", store=2, dept=92)  # fmt: skip
        alerts.open_alert(session, "dept_total", "warning", "department 92 across stores: low",
                          {"url": "/chain/departments/92"}, key="dept 92", dept=92)  # fmt: skip
        alerts.open_alert(session, "actuals_feed", "warning", "no actual sales for the week of 2012-05-04",
                          {"url": "/monitoring"}, key="missing 2012-05-04")  # fmt: skip


def test_each_open_alert_links_to_the_page_its_url_names(mon_app):
    storage = mon_app.extensions["storage"]
    _loop_alerts(storage)
    html = mon_app.test_client().get("/monitoring").get_data(as_text=True)
    links = re.findall(r'<a class="mon-open" href="([^"]+)" data-testid="alert-url">([^<]+)</a>', html)
    assert sorted(links) == [
        ("/chain/departments/92", "Open department 92"),
        ("/series/2/92", "Open store 2, dept 92"),
        ("/store?store=20", "Open store 20"),
    ]  # the feed's url is the monitoring page itself: no link to where the reader already is
    with storage.session() as session:
        (alert,) = alerts.open_alerts(session, "store_total")
        payload = alerts.alert_payload(alert, "opened")
    assert payload["alert"]["url"] == "/store?store=20"  # the webhook's JSON carries it too
