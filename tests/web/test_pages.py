"""The HTML pages: full-page posts (no JS), HTMX partial swaps, inline errors, downloads.

Everything runs against the real small model (`client` / `model_app` from tests/conftest.py); stores,
departments, weeks and the numbers shown come from the served Forecaster (`forecaster`, `known`).
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from app.storage import PredictionLog
from tests.helpers.answers import money
from tests.helpers.forms import HTMX, csrf_token, post_form


def logged(app, source: str) -> int:
    with app.extensions["storage"].session() as session:
        return session.scalar(
            select(func.count()).select_from(PredictionLog).where(PredictionLog.source == source)
        )


def test_base_layout_nav_theme_and_assets(client):
    html = client.get("/").get_data(as_text=True)
    for href in (
        "/",
        "/store",
        "/batch",
        "/forecast-runs",
        "/chain",
        "/monitoring",
        "/models",
        "/runs",
        "/api/docs",
    ):
        assert f'href="{href}"' in html
    assert (
        "/static/vendor/htmx.min.js" in html and "/static/js/app.js" in html and "/static/js/theme.js" in html
    )
    assert 'id="theme-toggle"' in html
    assert "X-CSRFToken" in html  # htmx sends the token on every request
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> breaks the CSP"
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers break the CSP"


def test_no_external_urls_in_any_page(client, known):
    pages = ("/", f"/store?store={known.store}", "/batch", "/model", "/api/docs", "/forecast-runs", "/chain")
    for path in (*pages, f"/chain/departments/{known.dept}"):
        html = client.get(path).get_data(as_text=True)
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#")), (path, url)


def test_forecast_form_lists_stores_departments_and_covariate_fields(client, forecaster, known):
    html = client.get("/").get_data(as_text=True)
    stores = forecaster.stores()
    assert f'<option value="{known.store}" selected>Store {known.store}</option>' in html
    for store in stores:
        assert f">Store {store}</option>" in html
    for dept in forecaster.departments(known.store):
        assert f">Dept {dept}</option>" in html
    assert f'<option value="{known.dept}" selected>Dept {known.dept}</option>' in html
    assert f'name="date" value="{known.week}"' in html  # the first week the model forecasts
    for name in ("date", "weeks", "is_holiday", "temperature", "markdown5", "unemployment"):
        assert f'name="{name}"' in html
    assert '<label for="temperature">' in html
    assert 'hx-post="/"' in html and 'hx-indicator="#forecast-spinner"' in html


def test_departments_follow_the_store(client, known):
    url = f"/partials/departments?store={known.other_store}"
    html = client.get(url, headers=HTMX).get_data(as_text=True)
    assert 'id="dept-field"' in html
    for dept in known.other_depts:
        assert f">Dept {dept}</option>" in html
    assert f">Dept {known.missing_dept}</option>" not in html
    assert "<html" not in html
    assert "No departments" in client.get("/partials/departments?store=x").get_data(as_text=True)
    url = f"/partials/departments?store={known.unknown_store}"
    assert "No departments" in client.get(url).get_data(as_text=True)


def test_single_week_full_page_post(model_app, client, forecaster, known):
    form = {"store": known.store, "dept": known.dept2, "date": known.week, "weeks": "1", "is_holiday": "auto"}
    response = post_form(client, form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" in html and 'data-testid="result-single"' in html
    expected = forecaster.predict_rows([{"store": known.store, "dept": known.dept2, "date": known.week}])[0]
    assert f'data-testid="prediction">{money(expected.prediction)}</span>' in html  # the model's number
    assert money(expected.lower_80) in html and money(expected.upper_80) in html
    assert logged(model_app, "page") == 1


def test_single_week_htmx_returns_the_panel_only(client, known):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "1"}
    response = post_form(client, form, HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="forecast-panel"') and 'data-testid="result-single"' in html


def test_covariates_given_on_the_form_reach_the_model(client, known):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "1", "temperature": "91.5"}
    html = post_form(client, form).get_data(as_text=True)
    assert "91.50" in html and 'value="91.5"' in html


def test_multi_week_shows_chart_table_and_csv_link(model_app, client, known):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "6"}
    html = post_form(client, form, HTMX).get_data(as_text=True)
    assert 'data-testid="result-multi"' in html and "<svg" in html
    weeks = re.findall(r"<tr><td><time datetime=\"(\d{4}-\d{2}-\d{2})\"", html)
    assert weeks == [known.weeks_after(i) for i in range(6)]
    link = re.search(r'href="(/download/[0-9a-f]{32}/[^"]+\.csv)"', html).group(1)
    csv = client.get(link)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    header, *lines = csv.get_data(as_text=True).strip().splitlines()
    assert header.startswith("store,dept,week") and len(lines) == 6
    assert [line.split(",")[2] for line in lines] == weeks
    assert logged(model_app, "page") == 6  # the download serves the page's rows: no second forecast


def test_a_service_level_says_what_to_stock_each_week(client, forecaster, known):
    """90%: each week's 0.9 quantile (the 80% band's top), in the card, the table and the CSV."""
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "1", "service_level": "90"}
    html = post_form(client, form).get_data(as_text=True)
    expected = forecaster.predict_rows([{"store": known.store, "dept": known.dept, "date": known.week}])[0]
    stock = re.search(r'data-testid="stock-to">.*?class="value">([^<]+)<', html).group(1)
    assert "Stock to (90% service level)" in html and stock == money(expected.upper_80)
    assert '<option value="90" selected>' in html
    html = post_form(client, {**form, "weeks": "4", "service_level": "95"}, HTMX).get_data(as_text=True)
    assert "Stock to (95%)" in html and len(re.findall('data-testid="stock-to-week"', html)) == 4
    link = re.search(r'href="(/download/[0-9a-f]{32}/[^"]+\.csv)"', html).group(1)
    header, *lines = client.get(link).get_data(as_text=True).strip().splitlines()
    assert header.split(",")[-1] == "q0.95" and len(lines) == 4
    assert "Stock to" not in post_form(client, {**form, "service_level": ""}).get_data(as_text=True)
    response = post_form(client, {**form, "service_level": "100"})
    assert response.status_code == 422 and 'id="service_level-error"' in response.get_data(as_text=True)


def test_forecast_csv_gives_quantiles_on_request(client, known):
    url = f"/forecast.csv?store={known.store}&dept={known.dept}&weeks=3&quantiles=0.9,0.1"
    header, *lines = client.get(url).get_data(as_text=True).strip().splitlines()
    assert header.split(",")[-2:] == ["q0.1", "q0.9"] and len(lines) == 3
    bad = client.get(f"/forecast.csv?store={known.store}&dept={known.dept}&weeks=3&quantiles=1.2")
    assert bad.status_code == 422 and "quantiles" in bad.get_data(as_text=True)


def test_forecast_page_says_why_this_number_and_shows_last_year(model_app, client, known):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "6"}
    html = post_form(client, form, HTMX).get_data(as_text=True)
    assert 'data-testid="why"' in html and 'data-testid="what-if"' not in html  # nothing set: no what-if
    sentence = re.search(r'data-testid="why-sentence">([^<]+)<', html).group(1)
    assert sentence.startswith("Last year (smoothed) $") and "trend" in sentence and "covariates" in sentence
    assert '<th class="num opt">Last year</th>' in html and "Same week last year" in html  # table, legend
    link = re.search(r'href="(/download/[0-9a-f]{32}/[^"]+\.csv)"', html).group(1)
    rows = list(csv.DictReader(io.StringIO(client.get(link).get_data(as_text=True))))
    assert len(rows) == 6 and rows[0]["last_year_week"] < known.week
    for row in rows:
        parts = [
            float(row[f"from_{name}"]) for name in ("last_year", "trend", "holiday", "covariates", "model")
        ]
        assert round(sum(parts) * 100) == round(float(row["prediction"]) * 100)  # to the cent
    single = post_form(client, {**form, "weeks": "1"}, HTMX).get_data(as_text=True)
    assert 'data-testid="forecast-chart"' in single and 'data-testid="why"' in single
    assert 'data-testid="last-year"' in single


def test_what_if_shows_the_sensitivity_to_the_values_set(model_app, client, known):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "4"}
    html = post_form(client, {**form, "temperature": "20", "markdown1": "50000"}, HTMX).get_data(as_text=True)
    assert 'data-testid="what-if"' in html and "against the model's own assumptions" in html
    assert html.count('data-testid="what-if-driver"') == 2 and "Temperature" in html and "Markdown 1" in html
    assert "outside what this store has seen" in html  # a $50,000 markdown: the model never saw one
    assert logged(model_app, "page") == 4  # the comparisons are not served predictions: not logged


def test_every_forecast_says_what_each_covariate_can_move_and_which_barely_do(client, known, forecaster):
    from app.serving.predictions import seen_values

    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "4"}
    html = post_form(client, form, HTMX).get_data(as_text=True)
    assert 'data-testid="what-if"' not in html and 'data-testid="covariate-ranges"' in html
    assert html.count('data-testid="covariate-range"') == len(seen_values(forecaster, known.store))
    rows = re.findall(r'data-testid="covariate-range"><td>([^<]+)</td>.*?<strong>([^<]+)</strong>', html)
    assert rows and all(re.fullmatch(r"[+−]\$[\d,]+ to [+−]\$[\d,]+", moved) for _, moved in rows), rows
    barely = html.count("barely moves</span>")
    sentence = re.search(r'data-testid="little-weight">([^<]+)<', html)
    assert (sentence is not None) == (barely > 0)
    if sentence:
        assert "explained little of this store&#39;s past sales" in sentence.group(1)
        assert "the forecast barely moves" in sentence.group(1)
    note = re.search(r'data-testid="last-year-note">(.+?)</p>', html).group(1)
    assert "same week last year" in note and "last year, smoothed" in note


def test_forecast_csv_rejects_bad_queries(client, known):
    assert client.get(f"/forecast.csv?store=x&dept={known.dept}&weeks=2").status_code == 422
    assert client.get(f"/forecast.csv?store={known.store}&dept={known.dept}&weeks=99").status_code == 422
    url = f"/forecast.csv?store={known.unknown_store}&dept={known.dept}&weeks=2"
    assert client.get(url).status_code == 422


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"date": "2012-02-30"}, "date", "Enter a date, such as "),
        ({"store": "1; DROP TABLE"}, "store", "Enter a whole number"),
        ({"weeks": "60"}, "weeks", "Enter 52 or less"),
        ({"cpi": "-5"}, "cpi", "Enter 0 or more"),
        ({"markdown1": "99999999999"}, "markdown1", "Enter 10,000,000 or less"),  # not 1e+07
        ({"markdown1": "1e400"}, "markdown1", "Enter a number (not infinity or NaN)"),
        ({"date": "<after>"}, "date", "Pick a week between "),  # ForecastError from the core, in words
        ({"store": "<unknown_store>"}, "store", "unknown store"),  # ForecastError from the core
        ({"dept": "999"}, "dept", "unknown department 999"),  # no store sells it: nothing to borrow
    ],
)
def test_validation_errors_inline_next_to_the_field(model_app, client, known, data, field, text):
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "1", **known.fill(data)}
    for headers in ({}, HTMX):
        response = post_form(client, form, headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert f'<span class="field-error" id="{field}-error" role="alert">' in html
        assert text in html
        assert 'aria-invalid="true"' in html
    assert logged(model_app, "page") == 0


def test_missing_csrf_token_is_refused(client, known):
    response = client.post("/", data={"store": known.store, "dept": known.dept, "date": known.week})
    assert response.status_code == 400 and "<html" in response.get_data(as_text=True)


def test_no_js_department_refresh(client, known):
    form = {"store": known.other_store, "dept": known.missing_dept, "date": known.week, "action": "refresh"}
    html = post_form(client, form).get_data(as_text=True)
    first = known.other_depts[0]
    assert f'<option value="{first}" selected>Dept {first}</option>' in html
    assert f">Dept {known.other_depts[-1]}</option>" in html
    assert f">Dept {known.missing_dept}</option>" not in html
    assert "result-single" not in html


# store
def test_store_page_ranks_departments_with_a_chart(model_app, client, forecaster, known):
    assert "Choose a store" in client.get("/store").get_data(as_text=True)
    html = client.get(f"/store?store={known.store}&weeks=4").get_data(as_text=True)
    assert 'data-testid="store-result"' in html and html.count("<svg") >= 3
    link = rf"/\?store={known.store}&amp;dept=(\d+)&amp;date=[-\d]+&amp;weeks=4"
    pattern = rf'<td class="num">(\d+)</td><td><a href="{link}">'
    ranks = re.findall(pattern, html)
    result = forecaster.forecast_store(known.store, known.week, 4)
    totals = {dept: sum(p.prediction for p in preds) for dept, preds in result.departments.items()}
    expected = sorted(totals, key=lambda dept: -totals[dept])  # largest first
    assert ranks == [(str(rank), str(dept)) for rank, dept in enumerate(expected, start=1)]
    assert logged(model_app, "page") == 4 * len(expected)
    partial = client.get(f"/store?store={known.store}&weeks=2", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="store-panel"' in partial


def test_store_page_errors_inline(client, known):
    response = client.get(f"/store?store={known.store}&weeks=0")
    assert response.status_code == 422 and 'id="weeks-error"' in response.get_data(as_text=True)
    response = client.get(f"/store?store={known.unknown_store}")
    assert response.status_code == 422 and 'id="store-error"' in response.get_data(as_text=True)
    kept = f'<option value="{known.unknown_store}" selected>{known.unknown_store} (not a store)</option>'
    assert kept in response.get_data(as_text=True)  # named beside its error, not shown as store 1


# batch
def upload(client, text: str, headers: dict | None = None, name: str = "test.csv"):
    data = {"csrf_token": csrf_token(client, "/batch"), "file": (io.BytesIO(text.encode()), name)}
    return client.post("/batch", data=data, content_type="multipart/form-data", headers=headers or {})


def test_batch_upload_preview_results_and_download(model_app, client, known):
    text = (
        "Store,Dept,Date,IsHoliday\n"
        f"{known.store},{known.dept},{known.week},FALSE\n"
        f"{known.store},{known.dept2},{known.weeks_after(1)},FALSE\n"
        f"{known.other_store},{known.missing_dept},{known.weeks_after(3)},TRUE\n"  # no history
    )
    response = upload(client, text)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="batch-result"' in html and "3 rows predicted" in html
    assert "1 rows have no sales history" in html
    link = re.search(r'href="(/batch/[0-9a-f]{32}\.csv)"', html).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    lines = download.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("store,dept,week")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        [str(known.store), str(known.dept), known.week],
        [str(known.store), str(known.dept2), known.weeks_after(1)],
        [str(known.other_store), str(known.missing_dept), known.weeks_after(3)],
    ]
    assert logged(model_app, "batch") == 3


def test_batch_errors_by_line(model_app, client, known):
    good = f"{known.store},{known.dept},{known.week}"
    text = f"Store,Dept,Date\n{good}\nabc,{known.dept},{known.week}\n{known.store},{known.dept},2012-02-30\n"
    response = upload(client, text, HTMX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        "<html" not in html and 'data-testid="batch-errors"' in html and 'data-testid="batch-preview"' in html
    )
    cell = r'<td class="num">{}</td><td><code>{}</code></td><td class="wrap">{}'
    assert re.search(cell.format(3, "Store", "Enter a whole number"), html)
    assert re.search(cell.format(4, "Date", "Enter a date"), html)
    assert "2 of 3 rows are invalid" in html
    assert logged(model_app, "batch") == 0


def test_batch_upload_reports_every_invalid_row_in_one_pass(model_app, client, known):
    """Four rows the schema refuses and two the model refuses (unknown store, week out of range): all six."""
    good = f"{known.store},{known.dept},{known.week}"
    bad = [
        f"abc,{known.dept},{known.week}",
        f"{known.store},0,{known.week}",
        f"{known.store},{known.dept},2012-02-30",
        f"{known.store},{known.dept},{known.week},999",
        f"{known.unknown_store},{known.dept},{known.week}",
        f"{known.store},{known.dept},{known.after}",
    ]
    text = "Store,Dept,Date,Temperature\n" + "\n".join([good, *bad, good]) + "\n"
    html = upload(client, text, HTMX, name="six.csv").get_data(as_text=True)
    lines = [int(n) for n in re.findall(r'<tr class="row-error"><td class="num">(\d+)</td>', html)]
    assert lines == [3, 4, 5, 6, 7, 8]
    assert "six.csv was not predicted: 6 of 8 rows are invalid" in html
    assert "Pick a week between " in html  # the week out of range, in words
    assert "<code>Temperature</code>" in html and "Enter 150 or less" in html  # the file's column, in words
    assert "Input should be" not in html
    api = client.post("/api/v1/predict/batch", data=text, content_type="text/csv")
    assert api.status_code == 422
    assert [d["line"] for d in api.get_json()["details"]] == [3, 4, 5, 6, 7, 8]
    assert logged(model_app, "batch") == 0


def test_a_chain_week_upload_is_predicted_and_its_bad_rows_counted(model_app, client, known):
    """A file past the old cap: predicted whole when valid; when not, the page lists the first problems
    and counts the rest (the API answer names every one)."""
    pairs = [(known.store, known.dept), (known.store, known.dept2), (known.other_store, known.missing_dept)]
    rows = [f"{s},{d},{known.weeks_after(i % 4)}" for i in range(3_000) for s, d in [pairs[i % 3]]]
    html = upload(client, "Store,Dept,Date\n" + "\n".join(rows) + "\n").get_data(as_text=True)
    assert "3,000 rows predicted" in html and logged(model_app, "batch") == 3_000
    link = re.search(r'href="(/batch/[0-9a-f]{32}\.csv)"', html).group(1)
    assert len(client.get(link).get_data(as_text=True).splitlines()) == 3_001

    bad = [row if i % 5 else f"0,{row.split(',', 1)[1]}" for i, row in enumerate(rows)]
    response = upload(client, "Store,Dept,Date\n" + "\n".join(bad) + "\n", HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "600 of 3,000 rows are invalid" in html
    assert (
        len(re.findall(r'<tr class="row-error"><td class="num">\d+<', html)) == 500
        and "and 100 more problems not listed" in html
    )


def test_batch_bad_files(client, known):
    assert upload(client, "Shop,Dept\n1,1\n").status_code == 400
    assert "unknown column" in upload(client, "Shop,Dept\n1,1\n").get_data(as_text=True)
    client.application.config["MAX_BATCH_ROWS"] = 20
    big = "Store,Dept,Date\n" + f"{known.store},{known.dept},{known.week}\n" * 21
    response = upload(client, big)
    assert response.status_code == 413 and "at most 20 rows" in response.get_data(as_text=True)
    response = client.post("/batch", data={"csrf_token": csrf_token(client, "/batch")})
    assert response.status_code == 422 and "Choose a CSV file" in response.get_data(as_text=True)


def test_batch_download_unknown_token(client):
    assert client.get("/batch/" + "0" * 32 + ".csv").status_code == 404
    assert client.get("/batch/../../etc.csv").status_code == 404


# model
def test_model_card_page(client, forecaster):
    backtest = forecaster.metadata["backtest"]
    html = client.get("/model").get_data(as_text=True)
    assert 'data-testid="model-card"' in html
    assert "Seasonal naive" in html
    assert money(backtest["wmae"]) in html and money(backtest["baseline_wmae"]) in html
    improvement = 1 - backtest["wmae"] / backtest["baseline_wmae"]
    assert f"{improvement * 100:.1f}%" in html
    for bucket in backtest["by_lag_bucket"]:  # the buckets monitoring scores live accuracy by
        words = bucket.replace("-", "–")
        assert f"{words} week{'' if bucket == '1' else 's'} ahead" in html
    assert html.count("<svg") >= 3  # backtest + importance charts (+ logo)
    for name in ("max_iter", "learning_rate", "min_samples_leaf"):  # for operators, not planners
        assert f"<code>{name}</code>" not in html
        assert f"<code>{name}</code>" in client.get(f"/models/{forecaster.version}").get_data(as_text=True)
    assert "baseline_wmae" not in html and "coverage_80" not in html
    scores = html.split('data-testid="range-scores"')[1].split("</table>")[0]
    lag1 = backtest["by_lag_bucket"]["1"]
    for label, shown in (
        ("Actual sales inside the 80% range", f"{100 * lag1['coverage_80']:.0f}%"),
        ("Interval score, 80% range", f"${lag1['interval_score_80']:,.0f}"),
        ("Interval score, 95% range", f"${lag1['interval_score_95']:,.0f}"),
        ("Quantile loss, low end (10%)", f"{100 * lag1['wql_0.1']:.1f}%"),
        ("Quantile loss, forecast (50%)", f"{100 * lag1['wql_0.5']:.1f}%"),
        ("Quantile loss, high end (90%)", f"{100 * lag1['wql_0.9']:.1f}%"),
    ):
        row = scores.split(f"<td>{label}</td>")[1].split("</tr>")[0]
        assert shown in row.split("</td>")[1], (label, shown)  # the first bucket, after all weeks ahead
    assert "interval_score" not in html and "wql" not in html  # planner words, no keys
    assert "width plus a penalty for each actual" in html and "lower is better" in html
    version_page = client.get(f"/models/{forecaster.version}").get_data(as_text=True)
    assert 'data-testid="range-scores"' in version_page
    top = max(forecaster.metadata["feature_importances"].items(), key=lambda kv: kv[1])[0]
    assert top in html and "lag52" in html and 'href="/api/docs"' in html


def test_one_backtest_figure_per_bucket_on_the_model_card_and_monitoring(client, forecaster):
    """The same buckets, the same figures and the same line saying which backtest, on both pages."""
    import re

    by_lag = forecaster.metadata["backtest"]["by_lag_bucket"]
    card = client.get("/model").get_data(as_text=True)
    monitoring = client.get("/monitoring").get_data(as_text=True)
    line = re.search(r'data-testid="backtest-line">([^<]+)<', card).group(1)
    assert (
        line.startswith("Backtest: the model refitted on sales up to ") and "Holiday weeks count 5×" in line
    )
    assert line in monitoring
    for figures in by_lag.values():
        shown = money(figures["wmae"])
        assert shown in card and f"{figures['wmae']:,.0f}" in monitoring


def test_model_card_context_from_metadata_alone(forecaster):
    from app.web.model_card import model_card_context

    meta = forecaster.metadata
    card = model_card_context(meta, with_charts=False)
    assert card["card_template"] == "partials/model_card.html"
    buckets = card["backtest"]["buckets"]
    assert set(buckets) == set(meta["backtest"]["by_lag_bucket"]) and buckets[:2] == ["1", "2-4"]
    model_row, baseline_row = card["backtest"]["rows"][:2]
    assert model_row["buckets"] == [meta["backtest"]["by_lag_bucket"][b]["wmae"] for b in buckets]
    naive = meta["backtest"]["baseline_by_lag_bucket"]
    assert baseline_row["buckets"] == [naive[b]["wmae"] for b in buckets]
    older = {**meta, "backtest": {k: v for k, v in meta["backtest"].items() if "lag_bucket" not in k}}
    assert model_card_context(older, with_charts=False)["backtest"]["buckets"][0] == "1-4"  # its one origin
    top = max(meta["feature_importances"].items(), key=lambda kv: kv[1])[0]
    assert card["importances"][0]["feature"] == top
    assert ("max_iter", 60) in card["params"]
    nested = model_card_context({**meta, "params": {"features": {"align": True}}}, with_charts=False)
    assert nested["params"] == [("features.align", True)]  # nested parameters are flattened
    assert model_card_context({})["backtest"]["rows"] == []
    scores = {row["key"]: row for row in card["range_scores"]["rows"]}
    assert card["range_scores"]["buckets"] == buckets
    for key in ("coverage_80", "interval_score_80", "interval_score_95", "wql_0.1", "wql_0.5", "wql_0.9"):
        assert scores[key]["values"] == [meta["backtest"]["by_lag_bucket"][b][key] for b in buckets]
        assert scores[key]["overall"] == meta["backtest"]["scores"][key]
    # lag buckets without the scores: the scores of the backtest's first origin, per horizon bucket
    bare = {b: {"rows": f["rows"], "wmae": f["wmae"]} for b, f in meta["backtest"]["by_lag_bucket"].items()}
    plain = model_card_context({**meta, "backtest": {**meta["backtest"], "by_lag_bucket": bare}})
    first = meta["backtest"]["scores"]["by_horizon"]
    plain_rows = {row["key"]: row for row in plain["range_scores"]["rows"]}
    assert (
        plain_rows["interval_score_80"]["values"][0]
        == first[plain["range_scores"]["buckets"][0]]["interval_score_80"]
    )
    assert model_card_context({})["range_scores"]["rows"] == []  # nothing to show: no table


def test_pages_without_a_model_say_so(app):
    client = app.test_client()
    for path in ("/", "/store", "/batch", "/model"):
        response = client.get(path)
        assert response.status_code == 503 and "No model is in production yet" in response.get_data(
            as_text=True
        )


def test_html_404_outside_the_api(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "<html" in response.get_data(as_text=True)


# end to end, by form
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


def test_covariate_placeholders_show_the_models_values(client, forecaster, known):
    def model_inputs(store, dept, date):
        return forecaster.predict_rows([{"store": store, "dept": dept, "date": date}])[0].inputs

    html = client.get("/").get_data(as_text=True)
    inputs = model_inputs(known.store, known.dept, known.week)
    assert f'placeholder="{inputs["temperature"]:.2f}"' in html
    assert f'placeholder="{inputs["fuel_price"]:.2f}"' in html
    week = known.weeks_after(1)
    url = f"/partials/covariates?store={known.other_store}&dept={known.missing_dept}&date={week}&cpi=200"
    html = client.get(url, headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and 'id="covariates-body"' in html
    inputs = model_inputs(known.other_store, known.missing_dept, week)
    assert f'placeholder="{inputs["temperature"]:.2f}"' in html and 'name="cpi" value="200"' in html
    url = f"/partials/covariates?store=x&dept={known.missing_dept}&date={week}"
    assert 'placeholder="auto"' in client.get(url).get_data(as_text=True)


def test_api_docs_render_code_spans_not_backticks(client):
    from app.web.pages.api_docs import code_spans

    assert code_spans("send `cold_start`: <b>") == "send <code>cold_start</code>: &lt;b&gt;"
    html = client.get("/api/docs").get_data(as_text=True)
    main = html.split("<main", 1)[1]
    assert "`" not in main.replace("`Bearer", "")  # only the curl example may quote
    assert "<code>date</code>" in main and "<code>cold_start</code>" in main
    assert "e+0" not in main and "1 – 9,999" in main  # ranges as a reader writes them, not 1e+07


def test_api_docs_examples_use_the_servers_own_address(client):
    html = client.get("/api/docs", base_url="http://forecasts.example:9123").get_data(as_text=True)
    assert "curl -s -X POST http://forecasts.example:9123/api/v1/predict" in html
    assert ":8000" not in html


def test_run_detail_shows_whole_numbers_as_whole(model_app, client):
    from app.registry import training_runs

    storage = model_app.extensions["storage"]
    with training_runs.track_run(storage, "backtest", "hgb") as run:
        run.log_metrics({"rows": 123906.0, "horizon": 39.0, "folds": 3, "wmae": 1207.64})
        run.log_metrics({"coverage_80": 0.798})
        run.log_metrics({"by_bucket": {"1-4": {"wmae": 1.0}, "14-26": {"wmae": 2.0}, "5-13": {"wmae": 3.0}}})
    html = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "<dd>123,906</dd>" in html and "<dd>39</dd>" in html and "<dd>3</dd>" in html
    assert "<dd>1,207.6</dd>" in html and "<dd>79.8%</dd>" in html and ".0</dd>" not in html
    assert "coverage_80" not in html and '<th class="num">MAE</th>' not in html  # words; no empty column
    assert html.index("<td>5-13</td>") < html.index("<td>14-26</td>")  # by weeks ahead


def test_a_link_naming_the_series_and_its_weeks_opens_the_forecast_run(client, known):
    """The store page's department links keep the store's first week and length: the planner lands on
    that forecast, not on an empty form reset to the first week."""
    store_page = client.get(f"/store?store={known.store}&start={known.weeks_after(2)}&weeks=4")
    link = f"/?store={known.store}&amp;dept={known.dept}&amp;date={known.weeks_after(2)}&amp;weeks=4"
    assert link in store_page.get_data(as_text=True)
    html = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert f"Store {known.store} · Dept {known.dept} · 4 weeks from {known.weeks_after(2)}" in html
    bad = client.get(f"/?store={known.store}&dept={known.dept}&date=2099-01-01&weeks=4")
    assert bad.status_code == 422 and 'id="date-error"' in bad.get_data(as_text=True)


def test_a_cold_start_keeps_its_department_chosen_and_links_no_published_series(client, known):
    """Forecast without refreshing the list after changing the store (no JavaScript): the answer and
    the form both name the department asked for, and no link leads to a series never published."""
    form = {"store": known.other_store, "dept": known.missing_dept, "date": known.week, "weeks": "4"}
    html = post_form(client, form).get_data(as_text=True)
    assert f"Dept {known.missing_dept} · 4 weeks from" in html
    chosen = f'<option value="{known.missing_dept}" selected>Dept {known.missing_dept} (new to this store)'
    assert chosen in html
    assert "Published forecasts of" not in html
    assert 'data-testid="why-cold"' in html and "has never sold department" in html  # not a waterfall of $0
    assert 'data-testid="covariate-ranges"' not in html
    one = post_form(client, {**form, "weeks": "1"}).get_data(as_text=True)
    assert 'data-testid="why-cold"' in one
