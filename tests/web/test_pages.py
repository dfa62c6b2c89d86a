"""The HTML pages: full-page posts (no JS), HTMX partial swaps, inline errors, downloads."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from app.storage import PredictionLog

HTMX = {"HX-Request": "true"}


def token(client, path: str = "/") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post_form(client, data: dict, headers: dict | None = None, path: str = "/"):
    return client.post(path, data={"csrf_token": token(client, path), **data}, headers=headers or {})


def logged(app, source: str) -> int:
    with app.extensions["storage"].session() as session:
        return session.scalar(
            select(func.count()).select_from(PredictionLog).where(PredictionLog.source == source)
        )


def test_base_layout_nav_theme_and_assets(fake_client):
    html = fake_client.get("/").get_data(as_text=True)
    for href in ("/", "/store", "/batch", "/model", "/models", "/runs", "/monitoring"):
        assert f'href="{href}"' in html
    assert (
        "/static/vendor/htmx.min.js" in html and "/static/js/app.js" in html and "/static/js/theme.js" in html
    )
    assert 'id="theme-toggle"' in html
    assert "X-CSRFToken" in html  # htmx sends the token on every request
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> breaks the CSP"
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers break the CSP"


def test_no_external_urls_in_any_page(fake_client):
    for path in ("/", "/store?store=1", "/batch", "/model", "/api/docs"):
        html = fake_client.get(path).get_data(as_text=True)
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#")), (path, url)


def test_forecast_form_lists_stores_departments_and_covariate_fields(fake_client):
    html = fake_client.get("/").get_data(as_text=True)
    assert '<option value="1" selected>Store 1</option>' in html and "Store 2" in html
    assert "Dept 3" in html
    for name in ("date", "weeks", "is_holiday", "temperature", "markdown5", "unemployment"):
        assert f'name="{name}"' in html
    assert '<label for="temperature">' in html
    assert 'hx-post="/"' in html and 'hx-indicator="#forecast-spinner"' in html


def test_departments_follow_the_store(fake_client):
    html = fake_client.get("/partials/departments?store=2", headers=HTMX).get_data(as_text=True)
    assert 'id="dept-field"' in html and "Dept 5" in html and "Dept 3" not in html
    assert "<html" not in html
    assert "No departments" in fake_client.get("/partials/departments?store=x").get_data(as_text=True)


def test_single_week_full_page_post(fake_app, fake_client):
    response = post_form(
        fake_client, {"store": "1", "dept": "2", "date": "2012-11-02", "weeks": "1", "is_holiday": "auto"}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" in html and 'data-testid="result-single"' in html
    assert "$1,201" in html  # the fake's prediction for store 1 dept 2 horizon 1
    assert logged(fake_app, "page") == 1


def test_single_week_htmx_returns_the_panel_only(fake_client):
    response = post_form(fake_client, {"store": "1", "dept": "2", "date": "2012-11-02", "weeks": "1"}, HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="forecast-panel"') and 'data-testid="result-single"' in html


def test_covariates_given_on_the_form_reach_the_model(fake_client):
    html = post_form(
        fake_client, {"store": "1", "dept": "1", "date": "2012-11-02", "weeks": "1", "temperature": "91.5"}
    ).get_data(as_text=True)
    assert "91.50" in html and 'value="91.5"' in html


def test_multi_week_shows_chart_table_and_csv_link(fake_app, fake_client):
    response = post_form(fake_client, {"store": "1", "dept": "1", "date": "2012-11-02", "weeks": "6"}, HTMX)
    html = response.get_data(as_text=True)
    assert 'data-testid="result-multi"' in html and "<svg" in html
    assert html.count("<tr><td>2012-") == 6
    link = re.search(r'href="(/forecast\.csv\?[^"]+)"', html).group(1).replace("&amp;", "&")
    csv = fake_client.get(link)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    assert len(csv.get_data(as_text=True).strip().splitlines()) == 7
    assert logged(fake_app, "page") == 12


def test_forecast_csv_rejects_bad_queries(fake_client):
    assert fake_client.get("/forecast.csv?store=x&dept=1&weeks=2").status_code == 422
    assert fake_client.get("/forecast.csv?store=1&dept=1&weeks=99").status_code == 422


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"store": "1", "dept": "1", "date": "2012-02-30", "weeks": "1"}, "date", "day value is outside"),
        (
            {"store": "1; DROP TABLE", "dept": "1", "date": "2012-11-02", "weeks": "1"},
            "store",
            "valid integer",
        ),
        (
            {"store": "1", "dept": "1", "date": "2012-11-02", "weeks": "60"},
            "weeks",
            "less than or equal to 52",
        ),
        ({"store": "1", "dept": "1", "date": "2012-11-02", "weeks": "1", "cpi": "-5"}, "cpi", "greater than"),
        ({"store": "1", "dept": "1", "date": "2016-01-01", "weeks": "1"}, "date", "outside the 52 weeks"),
    ],
)
def test_validation_errors_inline_next_to_the_field(fake_app, fake_client, data, field, text):
    for headers in ({}, HTMX):
        response = post_form(fake_client, data, headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert f'<span class="field-error" id="{field}-error" role="alert">' in html
        assert text in html
        assert 'aria-invalid="true"' in html
    assert logged(fake_app, "page") == 0


def test_missing_csrf_token_is_refused(fake_client):
    response = fake_client.post("/", data={"store": "1", "dept": "1", "date": "2012-11-02"})
    assert response.status_code == 400 and "<html" in response.get_data(as_text=True)


def test_no_js_department_refresh(fake_client):
    html = post_form(
        fake_client, {"store": "2", "dept": "3", "date": "2012-11-02", "action": "refresh"}
    ).get_data(as_text=True)
    assert '<option value="1" selected>Dept 1</option>' in html and "Dept 5" in html
    assert "result-single" not in html


# ------------------------------------------------------------------------------------------- store
def test_store_page_ranks_departments_with_a_chart(fake_app, fake_client):
    assert "Choose a store" in fake_client.get("/store").get_data(as_text=True)
    html = fake_client.get("/store?store=1&weeks=4").get_data(as_text=True)
    assert 'data-testid="store-result"' in html and html.count("<svg") >= 3
    ranks = re.findall(r'<td class="num">(\d+)</td><td><a href="/\?store=1&amp;dept=(\d+)">', html)
    assert ranks == [("1", "3"), ("2", "2"), ("3", "1")]
    assert logged(fake_app, "page") == 12
    partial = fake_client.get("/store?store=1&weeks=2", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="store-panel"' in partial


def test_store_page_errors_inline(fake_client):
    response = fake_client.get("/store?store=1&weeks=0")
    assert response.status_code == 422 and 'id="weeks-error"' in response.get_data(as_text=True)
    response = fake_client.get("/store?store=42")
    assert response.status_code == 422 and 'id="store-error"' in response.get_data(as_text=True)


# ------------------------------------------------------------------------------------------- batch
def upload(client, text: str, headers: dict | None = None, name: str = "test.csv"):
    data = {"csrf_token": token(client, "/batch"), "file": (io.BytesIO(text.encode()), name)}
    return client.post("/batch", data=data, content_type="multipart/form-data", headers=headers or {})


def test_batch_upload_preview_results_and_download(fake_app, fake_client):
    text = "Store,Dept,Date,IsHoliday\n1,1,2012-11-02,FALSE\n1,2,2012-11-09,FALSE\n2,5,2012-11-23,TRUE\n"
    response = upload(fake_client, text)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="batch-result"' in html and "3 rows predicted" in html
    assert "1 rows have no sales history" in html
    link = re.search(r'href="(/batch/[0-9a-f]{32}\.csv)"', html).group(1)
    download = fake_client.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    lines = download.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("store,dept,week")
    assert logged(fake_app, "batch") == 3


def test_batch_errors_by_line(fake_app, fake_client):
    text = "Store,Dept,Date\n1,1,2012-11-02\nabc,1,2012-11-02\n1,1,2012-02-30\n"
    response = upload(fake_client, text, HTMX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        "<html" not in html and 'data-testid="batch-errors"' in html and 'data-testid="batch-preview"' in html
    )
    assert re.search(r'<td class="num">3</td><td><code>store</code>', html)
    assert re.search(r'<td class="num">4</td><td><code>date</code>', html)
    assert "2 of 3 rows are invalid" in html
    assert logged(fake_app, "batch") == 0


def test_batch_bad_files(fake_client):
    assert upload(fake_client, "Shop,Dept\n1,1\n").status_code == 422
    assert "unknown column" in upload(fake_client, "Shop,Dept\n1,1\n").get_data(as_text=True)
    big = "Store,Dept,Date\n" + "1,1,2012-11-02\n" * 1001
    response = upload(fake_client, big)
    assert response.status_code == 413 and "1000" in response.get_data(as_text=True)
    response = fake_client.post("/batch", data={"csrf_token": token(fake_client, "/batch")})
    assert response.status_code == 422 and "Choose a CSV file" in response.get_data(as_text=True)


def test_batch_download_unknown_token(fake_client):
    assert fake_client.get("/batch/" + "0" * 32 + ".csv").status_code == 404
    assert fake_client.get("/batch/../../etc.csv").status_code == 404


# ------------------------------------------------------------------------------------------- model
def test_model_card_page(fake_client):
    html = fake_client.get("/model").get_data(as_text=True)
    assert 'data-testid="model-card"' in html
    assert "Seasonal naive" in html and "$1,500" in html and "$2,100" in html and "28.6%" in html
    assert "1-4 wk ahead" in html and html.count("<svg") >= 3  # backtest + importance charts (+ logo)
    assert "max_iter" in html and "features.align" in html
    assert "lag52" in html and 'href="/api/docs"' in html


def test_model_card_context_from_metadata_alone():
    from app.web.model_card import model_card_context
    from tests.web.fakes import FakeForecaster

    card = model_card_context(FakeForecaster().metadata, with_charts=False)
    assert card["card_template"] == "partials/model_card.html"
    assert card["backtest"]["rows"][0]["buckets"] == [1200.0, 1600.0]
    assert card["importances"][0]["feature"] == "lag52"
    assert model_card_context({})["backtest"]["rows"] == []


def test_pages_without_a_model_say_so(app):
    client = app.test_client()
    for path in ("/", "/store", "/batch", "/model"):
        response = client.get(path)
        assert response.status_code == 503 and "No model is in production yet" in response.get_data(
            as_text=True
        )


def test_html_404_outside_the_api(fake_client):
    response = fake_client.get("/no/such/page")
    assert response.status_code == 404 and "<html" in response.get_data(as_text=True)


# ------------------------------------------------------------------------------- the real small model
def test_real_model_pages(client, model_app):
    html = client.get("/").get_data(as_text=True)
    store = re.search(r'<option value="(\d+)" selected>Store', html).group(1)
    dept = re.search(r'<option value="(\d+)" selected>Dept', html).group(1)
    date = re.search(r'name="date" value="([\d-]+)"', html).group(1)
    single = post_form(client, {"store": store, "dept": dept, "date": date, "weeks": "1"}, HTMX)
    assert single.status_code == 200 and 'data-testid="result-single"' in single.get_data(as_text=True)
    multi = post_form(client, {"store": store, "dept": dept, "date": date, "weeks": "13"}, HTMX)
    assert multi.status_code == 200 and "<svg" in multi.get_data(as_text=True)
    assert client.get(f"/store?store={store}&weeks=4").status_code == 200
    model = client.get("/model")
    assert model.status_code == 200 and 'data-testid="model-card"' in model.get_data(as_text=True)


def test_covariate_placeholders_show_the_models_values(fake_client):
    html = fake_client.get("/").get_data(as_text=True)
    assert 'placeholder="60.00"' in html and 'placeholder="3.50"' in html  # the fake's assumed inputs
    partial = fake_client.get("/partials/covariates?store=2&dept=5&date=2012-11-09&cpi=200", headers=HTMX)
    html = partial.get_data(as_text=True)
    assert "<html" not in html and 'id="covariates-body"' in html
    assert 'placeholder="60.00"' in html and 'name="cpi" value="200"' in html
    html = fake_client.get("/partials/covariates?store=x&dept=5&date=2012-11-09").get_data(as_text=True)
    assert 'placeholder="auto"' in html
