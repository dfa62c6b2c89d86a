"""The weekly loop over HTTP: published runs (API, CSV, pages), one series against actual sales,
accuracy by lag (API, monitoring page, /metrics), and downloads that serve what a page showed.

A real run is published from the small model (app.loop.publish.publish) and a week of actual sales
after it is ingested and scored, so every figure checked here comes from the loop's own tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.forecasting import totals
from app.loop import accuracy, publish
from app.loop.history import lineage_of, production_forecaster
from app.monitoring import alerts
from app.registry import versions
from app.storage import PredictionLog
from tests.helpers.forms import HTMX, post_form
from tests.helpers.published import score_next_week

jsonschema = pytest.importorskip("jsonschema")


def _storage(app):
    return app.extensions["storage"]


def _logged(app) -> int:
    with _storage(app).session() as session:
        return session.scalar(select(func.count()).select_from(PredictionLog))


@pytest.fixture
def run(model_app, forecaster):
    """A forecast run published from the served model: 52 weeks for every series."""
    return publish.publish(_storage(model_app), forecaster)


@pytest.fixture
def scored(model_app, forecaster, run):
    """The week after the run's data with actual sales 10% above each next-week forecast, scored."""
    return score_next_week(_storage(model_app), forecaster, run)


def _validate(client, path: str, response) -> None:
    """The answer's status is documented for the operation and its JSON matches the documented schema."""
    document = client.get("/api/v1/openapi.json").get_json()
    responses = document["paths"][path]["get"]["responses"]
    assert str(response.status_code) in responses, (path, response.status_code)
    content = responses[str(response.status_code)]["content"]
    if response.mimetype == "text/csv":
        assert "text/csv" in content
        return
    schema = content["application/json"]["schema"]
    jsonschema.validate(response.get_json(), {"components": document["components"], **schema})


# API


def test_forecast_runs_are_listed_and_described(client, run):
    listed = client.get("/api/v1/forecast-runs")
    assert listed.status_code == 200 and listed.get_json()["runs"] == [run.to_dict()]
    one = client.get(f"/api/v1/forecast-runs/{run.id}")
    assert one.status_code == 200 and one.get_json() == run.to_dict()
    assert one.get_json()["rows"] == run.series * 52
    for response, path in ((listed, "/forecast-runs"), (one, "/forecast-runs/{run_id}")):
        _validate(client, path, response)


@pytest.mark.parametrize(
    "path", ["/forecast-runs/999", "/forecast-runs/99999999999999999999", "/forecast-runs/999.csv"]
)
def test_an_unknown_run_is_a_404_in_the_error_shape(client, run, path):
    response = client.get("/api/v1" + path)
    assert response.status_code == 404
    body = response.get_json()
    assert set(body) == {"error", "details"} and body["error"]


def test_bad_query_parameters_are_422(client, run):
    for url in (
        "/api/v1/forecast-runs?limit=0",
        "/api/v1/forecast-runs?limit=x",
        "/api/v1/forecast-runs?x=1",
    ):
        response = client.get(url)
        assert response.status_code == 422 and response.get_json()["details"], url
        _validate(client, "/forecast-runs", response)


def test_run_csv_is_exactly_the_stored_rows(model_app, client, run):
    stored = publish.forecast_run_rows(_storage(model_app), run.id)
    expected = "".join(publish.csv_lines(stored))
    for url in (f"/api/v1/forecast-runs/{run.id}.csv", "/api/v1/forecast-runs/latest.csv"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        assert response.headers["X-Forecast-Run"] == str(run.id)
        text = response.get_data(as_text=True)
        assert text == expected
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == publish.CSV_HEADER and len(records) == run.rows == len(stored)
    for record, row in zip(records, stored, strict=True):
        assert (int(record["Store"]), int(record["Dept"]), record["Date"], int(record["lag"])) == (
            row["store"],
            row["dept"],
            row["week"].isoformat(),
            row["lag"],
        )
        assert float(record["prediction"]) == round(row["prediction"], 2)
        assert float(record["upper_95"]) == round(row["upper_95"], 2)


def test_run_csv_carries_asked_quantiles_as_the_served_model_gives_them(model_app, client, forecaster, run):
    """`quantiles` adds a q column per level, read from each stored row's bands: the same figures the
    model that published the run gives the same weeks, 0.1 and 0.9 the 80% band's ends."""
    import pandas as pd

    levels = ["0.01", "0.1", "0.25", "0.5", "0.9", "0.975", "0.99"]
    for url in (f"/api/v1/forecast-runs/{run.id}.csv", "/api/v1/forecast-runs/latest.csv"):
        response = client.get(f"{url}?quantiles=0.9,0.1,0.5,0.25,0.01,0.975,0.99")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        text = response.get_data(as_text=True)
        _validate(client, url.removeprefix("/api/v1").replace(str(run.id), "{run_id}"), response)
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == publish.CSV_HEADER + [f"q{q}" for q in levels]
    assert len(records) == run.rows
    frame = pd.DataFrame(records)
    number = frame.drop(columns=["Date"]).astype(float)
    assert (abs(number["q0.1"] - number["lower_80"]) <= 0.02).all()
    assert (abs(number["q0.9"] - number["upper_80"]) <= 0.02).all()
    assert (abs(number["q0.5"] - number["prediction"]) <= 0.01).all()
    ordered = number[[f"q{q}" for q in levels]].to_numpy()
    assert (ordered[:, 1:] >= ordered[:, :-1] - 0.01).all()  # the quantiles rise with the level
    sample = frame.iloc[:: max(1, len(frame) // 400)]
    served = forecaster.predict_frame(
        pd.DataFrame(
            {
                "store": sample["Store"].astype(int).to_numpy(),
                "dept": sample["Dept"].astype(int).to_numpy(),
                "date": pd.to_datetime(sample["Date"]).to_numpy(),
            }
        ),
        quantiles=[float(q) for q in levels],
    )
    for q in levels:
        gap = abs(served[f"q{q}"].to_numpy() - sample[f"q{q}"].astype(float).to_numpy())
        assert gap.max() <= 0.05, (q, gap.max())


def test_run_csv_refuses_bad_quantiles_naming_the_field(client, run):
    for query in (
        "quantiles=1.5",
        "quantiles=0",
        "quantiles=abc",
        "quantiles=",
        "quantile=0.5",
        "quantiles=0.5,0.5",
    ):
        response = client.get(f"/api/v1/forecast-runs/{run.id}.csv?{query}")
        assert response.status_code == 422, query
        body = response.get_json()
        assert set(body) == {"error", "details"}
        named = " ".join(str(d) for d in body["details"])
        assert "quantile" in named, (query, body)


def test_run_csv_quantiles_of_a_model_without_its_metadata_are_a_409(model_app, client, run):
    version = versions.get_version(_storage(model_app), model_app.config["MODEL_NAME"], run.model_version)
    metadata = Path(version["artifact_path"]).with_suffix(".json")
    kept = metadata.read_bytes()
    metadata.unlink()
    try:
        response = client.get(f"/api/v1/forecast-runs/{run.id}.csv?quantiles=0.9")
        assert response.status_code == 409
        assert response.get_json()["details"][0]["field"] == "quantiles"
        assert client.get(f"/api/v1/forecast-runs/{run.id}.csv").status_code == 200  # the bands alone still
    finally:  # the artifact is shared by the module's other tests
        metadata.write_bytes(kept)


def test_latest_csv_and_series_before_any_run_are_404(client):
    for url in ("/api/v1/forecast-runs/latest.csv", "/api/v1/forecast-runs/latest/series/1/1"):
        response = client.get(url)
        assert response.status_code == 404 and "no forecast run" in response.get_json()["error"]
    assert client.get("/api/v1/forecast-runs").get_json() == {"runs": []}


def test_latest_series_is_the_newest_runs_rows(model_app, client, forecaster, known):
    storage = _storage(model_app)
    first = publish.publish(storage, forecaster)
    newest = publish.publish(storage, forecaster, force=True)  # replaces the week's run
    assert newest.outcome == publish.REPLACED and newest.id == first.id
    response = client.get(f"/api/v1/forecast-runs/latest/series/{known.store}/{known.dept}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["run"]["id"] == newest.id and (body["store"], body["dept"]) == (known.store, known.dept)
    stored = publish.forecast_run_rows(storage, newest.id, store=known.store, dept=known.dept)
    assert [f["week"] for f in body["forecasts"]] == [r["week"].isoformat() for r in stored]
    assert [f["lag"] for f in body["forecasts"]] == list(range(1, 53))
    assert body["forecasts"][0]["prediction"] == round(stored[0]["prediction"], 2)
    _validate(client, "/forecast-runs/latest/series/{store}/{dept}", response)
    missing = client.get(f"/api/v1/forecast-runs/latest/series/{known.other_store}/{known.missing_dept}")
    assert missing.status_code == 404 and missing.get_json()["details"]
    huge = client.get("/api/v1/forecast-runs/latest/series/99999999999999999999/1")
    assert huge.status_code == 404


def test_accuracy_by_lag_beside_the_backtest(model_app, client, forecaster, scored):
    response = client.get("/api/v1/accuracy")
    assert response.status_code == 200
    body = response.get_json()
    _validate(client, "/accuracy", response)
    assert body["lineage"] == lineage_of(forecaster)
    buckets = {b["bucket"]: b for b in body["buckets"]}
    assert list(buckets) == ["1", "2-4", "5-13", "14-26", "27-52"]
    live = accuracy.accuracy_by_lag(_storage(model_app), lineage_of(forecaster))
    first = buckets["1"]
    assert first["rows"] == len(scored["rows"]) == live["1"]["rows"]
    assert first["wmae"] == pytest.approx(live["1"]["wmae"])
    assert first["bias"] < 0  # actuals were 10% above the forecasts
    reference = forecaster.metadata["backtest"]["by_lag_bucket"]["1"]
    assert first["backtest_wmae"] == pytest.approx(reference["wmae"])
    assert first["ratio_to_backtest"] == pytest.approx(first["wmae"] / reference["wmae"])
    assert buckets["2-4"]["rows"] == 0 and buckets["2-4"]["wmae"] is None
    for name in ("interval_score_80", "interval_score_95", "wql_0.1", "wql_0.5", "wql_0.9"):
        assert first[name] == pytest.approx(live["1"][name]) and first[f"backtest_{name}"] == pytest.approx(
            reference[name]
        )
    # every actual 10% above its forecast (to the cent)
    assert first["wql_0.5"] == pytest.approx(2 * 0.5 * (0.1 / 1.1), rel=1e-4)
    assert buckets["2-4"]["interval_score_80"] is None
    recent = client.get("/api/v1/accuracy?weeks=1").get_json()
    assert recent["since"] and recent["buckets"][0]["rows"] in (0, first["rows"])
    bad = client.get("/api/v1/accuracy?weeks=zero")
    assert bad.status_code == 422 and bad.get_json()["details"][0]["field"] == "weeks"


def test_accuracy_without_a_model_is_503(app):
    response = app.test_client().get("/api/v1/accuracy")
    assert response.status_code == 503 and set(response.get_json()) == {"error", "details"}


def test_every_new_operation_is_documented(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/forecast-runs",
        "/forecast-runs/{run_id}",
        "/forecast-runs/{run_id}.csv",
        "/forecast-runs/latest.csv",
        "/forecast-runs/latest/series/{store}/{dept}",
        "/accuracy",
    ):
        assert "404" in paths[path]["get"]["responses"], path


# pages


def test_forecast_runs_page_lists_runs_with_csv_links(client, run):
    html = client.get("/forecast-runs").get_data(as_text=True)
    assert 'data-testid="runs-table"' in html and f"#{run.id}" in html
    assert f'href="/api/v1/forecast-runs/{run.id}.csv"' in html
    assert 'href="/api/v1/forecast-runs/latest.csv"' in html
    assert run.data_through.isoformat() in html
    assert 'href="/forecast-runs" class="active"' in html


def test_forecast_runs_page_before_any_run(client):
    html = client.get("/forecast-runs").get_data(as_text=True)
    assert "No forecast run published yet" in html


def test_series_lookup_redirects(client, run, known):
    response = client.get(f"/series?store={known.store}&dept={known.dept}")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/series/{known.store}/{known.dept}"
    )
    assert client.get("/series?store=x&dept=1").status_code == 422


def test_series_page_shows_published_forecasts_against_actuals(model_app, client, known, run, scored):
    html = client.get(f"/series/{known.store}/{known.dept}").get_data(as_text=True)
    assert 'data-testid="series-chart"' in html and html.count("<svg") >= 2
    row = next(r for r in scored["rows"] if (r["store"], r["dept"]) == (known.store, known.dept))
    table = html.split('data-testid="series-table"')[1]
    assert f"<td>{scored['week'].isoformat()}</td>" in table
    assert (
        f"${round(row['prediction'], 2):,.0f}" in table
        and f"${round(row['prediction'] * 1.1, 2):,.0f}" in table
    )
    assert f"Forecast from sales through {run.data_through.isoformat()}, 52 weeks ahead" in html
    lag4 = client.get(f"/series/{known.store}/{known.dept}?lag=4").get_data(as_text=True)
    assert 'aria-current="true">4 wk' in lag4
    assert client.get(f"/series/{known.other_store}/{known.missing_dept}").status_code == 404
    assert client.get("/series/99999999999999999999/1").status_code == 404


def test_forecast_page_shows_data_through_and_downloads_what_it_showed(model_app, client, forecaster, known):
    through = forecaster.data_through.isoformat()
    single = post_form(client, {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "1"})
    assert f"Forecast from sales through {through}, 1 week ahead" in single.get_data(as_text=True)
    form = {"store": known.store, "dept": known.dept, "date": known.week, "weeks": "5"}
    html = post_form(client, form, HTMX).get_data(as_text=True)
    assert f"Forecast from sales through {through}, 1–5 weeks ahead" in html
    shown = re.findall(
        r"<tr><td><time datetime=\"(\d{4}-\d{2}-\d{2})\">.*?</time></td><td class=\"num opt\">\d+</td>"
        r"<td class=\"num\"><strong>([^<]+)",
        html,
    )
    link = re.search(r'href="(/download/[0-9a-f]{32}/[^"]+\.csv)"', html).group(1)
    before = _logged(model_app)
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert _logged(model_app) == before  # no second forecast, no second log entry
    records = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["week"], f"${float(r['prediction']):,.0f}") for r in records] == shown
    assert {r["data_through"] for r in records} == {through}
    ids = [r["prediction_id"] for r in records]
    with _storage(model_app).session() as session:
        logged = {str(i) for i in session.scalars(select(PredictionLog.id))}
    assert set(ids) <= logged  # the ids of the page's own log entries


def test_store_page_shows_data_through_and_downloads_what_it_showed(model_app, client, forecaster, known):
    html = client.get(f"/store?store={known.store}&weeks=3").get_data(as_text=True)
    assert f"Forecast from sales through {forecaster.data_through.isoformat()}, 1–3 weeks ahead" in html
    link = re.search(r'href="(/download/[0-9a-f]{32}/[^"]+\.csv)"', html).group(1)
    before = _logged(model_app)
    records = list(csv.DictReader(io.StringIO(client.get(link).get_data(as_text=True))))
    assert _logged(model_app) == before
    assert len(records) == before == 3 * len(forecaster.departments(known.store))


def test_downloads_refuse_unknown_tokens(client):
    assert client.get("/download/" + "0" * 32 + "/x.csv").status_code == 404
    assert client.get("/download/nothex/x.csv").status_code == 404
    assert client.get("/download/" + "0" * 32 + "/..evil").status_code == 404


def test_accuracy_by_level_adds_the_published_forecasts_up(model_app, client, forecaster, scored):
    body = client.get("/api/v1/accuracy").get_json()
    levels = {v["level"]: v for v in body["levels"]}
    assert list(levels) == ["series", "store", "department", "chain"]
    rows = scored["rows"]
    stores, depts = {r["store"] for r in rows}, {r["dept"] for r in rows}
    assert levels["series"]["rows"] == len(rows)
    assert (levels["store"]["rows"], levels["department"]["rows"], levels["chain"]["rows"]) == (
        len(stores),
        len(depts),
        1,
    )
    chain = levels["chain"]
    forecast = sum(r["prediction"] for r in rows)
    actual = sum(round(r["prediction"] * 1.1, 2) for r in rows)
    assert chain["wmae"] == pytest.approx(actual - forecast, rel=1e-4)  # one total (in cents): its miss
    assert chain["bias_pct"] == pytest.approx((forecast - actual) / actual, rel=1e-4)
    assert [b["bucket"] for b in chain["by_lag"]] == ["1"]
    for level in levels.values():  # 10% above every forecast: every total 10% above its own
        assert level["bias_pct"] == pytest.approx(-1 / 11, abs=1e-3), level
        assert level["what"] and level["name"]
        assert 0 <= level["coverage_80"] <= level["coverage_95"] <= 1
    # the chain's 80% range, from the served model, decides whether its one total is covered
    half = forecaster.bucket_only_half_width(
        [r["store"] for r in rows], [r["dept"] for r in rows], [1] * len(rows),
        [r["upper_80"] - r["prediction"] for r in rows],
    )  # fmt: skip
    summed = totals.sum_totals(
        "chain",
        pd.DataFrame(
            {
                "store": [r["store"] for r in rows], "dept": [r["dept"] for r in rows],
                "date": [r["week"] for r in rows], "horizon": 1,
                "prediction": [r["prediction"] for r in rows], "half80": half,
            }
        ),
    )  # fmt: skip
    bounds = totals.with_bounds(forecaster.calibrator, "chain", summed).iloc[0]
    assert chain["coverage_80"] == float(bounds["lower_80"] <= actual <= bounds["upper_80"])
    history = accuracy.accuracy_history(_storage(model_app), lineage_of(forecaster))
    assert {h["bucket"] for h in history} == {"1"}  # the charts read the series' buckets only


# monitoring


def test_monitoring_shows_accuracy_by_lag(model_app, client, forecaster, scored):
    html = client.get("/monitoring").get_data(as_text=True)
    section = html.split('data-testid="lag-accuracy"')[1].split("</section>")[0]
    assert "Accuracy by lag" in html
    live = accuracy.accuracy_by_lag(_storage(model_app), lineage_of(forecaster))["1"]
    reference = forecaster.metadata["backtest"]["by_lag_bucket"]["1"]["wmae"]
    first = section.split("<tbody>")[1].split("</tr>")[0]
    assert f"<strong>{live['wmae']:,.0f}</strong>" in first and f"{reference:,.0f}" in first
    assert f"{live['rows']:,}" in first and f"{live['naive_wmae']:,.0f}" in first
    scores = section.split('data-testid="lag-scores"')[1].split("</table>")[0]
    assert "Interval score, 80% range" in scores and "Quantile loss, forecast (50%)" in scores
    first_scores = scores.split("<tbody>")[1].split("</tr>")[0]
    backtest = forecaster.metadata["backtest"]["by_lag_bucket"]["1"]
    assert f"${live['interval_score_80']:,.0f}" in first_scores
    assert f"{100 * live['wql_0.5']:.1f}%" in first_scores
    assert f"/ ${backtest['interval_score_95']:,.0f}" in first_scores
    assert "interval_score" not in section and "wql" not in section  # planner words, no keys
    assert "penalty for each actual" in section
    # WMAE, bias, 80% and 95% coverage over the weeks, each drawn for a wide and a narrow container
    assert section.count('<div class="chart-wide"><svg') == 4 and section.count("<svg") == 8
    levels = section.split('data-testid="level-accuracy"')[1].split("</table>")[0]
    for level, words in (("series", "Department in one store"), ("chain", "Whole chain")):
        row = levels.split(f'data-level="{level}"')[1].split("</tr>")[0]
        assert words in row and "against" in row  # what the figure is scored on, in words
    assert '<td class="num">1</td>' in levels.split('data-level="chain"')[1]  # one chain total


def test_alerts_show_store_and_dept_with_a_series_link(model_app, client, known):
    with _storage(model_app).session() as session:
        alerts.open_alert(
            session, "bias", "info", "persistently biased", key="series", store=known.store, dept=known.dept
        )
        resolved = alerts.open_alert(session, "bias", "warning", "store-wide", key="store", store=known.store)
        alerts.resolve(session, resolved.id)
    html = client.get("/monitoring/partials/alerts").get_data(as_text=True)
    assert f'href="/series/{known.store}/{known.dept}" data-testid="alert-series">{known.dept}</a>' in html
    assert '<th class="num">Store</th><th class="num">Dept</th>' in html
    assert (
        f'<td class="num"><a href="/store?store={known.store}">{known.store}</a></td><td class="num">–</td>'
        in html
    )


def test_metrics_carry_lag_gauges_and_data_freshness(model_app, client, forecaster, run, scored):
    client.get("/")  # loads the model into this worker's memory
    text = client.get("/metrics").get_data(as_text=True)
    live = accuracy.accuracy_by_lag(_storage(model_app), lineage_of(forecaster))["1"]
    wmae = re.search(r'^storecast_live_wmae\{bucket="1"\} (\S+)$', text, re.M)
    assert wmae and float(wmae.group(1)) == pytest.approx(live["wmae"])
    for name in (
        "storecast_live_naive_wmae",
        "storecast_live_coverage_80",
        "storecast_live_bias",
        "storecast_live_interval_score_80",
        "storecast_live_interval_score_95",
    ):
        assert re.search(rf'^{name}\{{bucket="1"\}} -?[0-9.e+-]+$', text, re.M), name
    wql = re.search(r'^storecast_live_wql\{bucket="1",quantile="0.5"\} (\S+)$', text, re.M)
    assert wql and float(wql.group(1)) == pytest.approx(live["wql_0.5"])
    assert 'bucket="2-4"' not in text  # unscored buckets are left out
    through = dt.datetime.combine(run.data_through, dt.time(), tzinfo=dt.UTC).timestamp()
    published = re.search(r"^storecast_forecast_run_data_through (\S+)$", text, re.M)
    assert published and float(published.group(1)) == through
    assert re.search(r"^storecast_serving_data_through [0-9.e+]+$", text, re.M)
    helps = re.findall(r"^# HELP (\S+)", text, re.M)
    assert len(helps) == len(set(helps))  # one family per name


def test_latest_after_a_rollback_is_the_production_versions_newest_run(model_app, client, known):
    """v2 publishes after v1, then production rolls back to v1: every "latest" serves v1's run."""
    storage, name = _storage(model_app), model_app.config["MODEL_NAME"]
    old = publish.publish(storage, production_forecaster(storage, name))
    first = versions.production_version(storage, name)
    artifact = {"artifact_path": first["artifact_path"], "artifact_sha256": first["artifact_sha256"]}
    versions.register_version(storage, name, **artifact, model_kind="hgb", stage="staging")
    versions.promote(storage, name, 2, force=True)
    newer = publish.publish(storage, production_forecaster(storage, name))
    assert (old.model_version, newer.model_version) == ("v1", "v2") and newer.id > old.id
    assert client.get("/api/v1/forecast-runs/latest.csv").headers["X-Forecast-Run"] == str(newer.id)

    versions.rollback(storage, name, reason="test")
    csv_response = client.get("/api/v1/forecast-runs/latest.csv")
    assert csv_response.headers["X-Forecast-Run"] == str(old.id)
    stored = "".join(publish.csv_lines(publish.forecast_run_rows(storage, old.id)))
    assert csv_response.get_data(as_text=True) == stored
    series = client.get(f"/api/v1/forecast-runs/latest/series/{known.store}/{known.dept}").get_json()
    assert series["run"]["id"] == old.id and series["run"]["model_version"] == "v1"

    runs_page = client.get("/forecast-runs").get_data(as_text=True)
    assert f"Newest run of production v1 · #{old.id}" in runs_page
    assert f"#{newer.id}" in runs_page and "v2" in runs_page  # still listed, labelled with its version
    series_page = client.get(f"/series/{known.store}/{known.dept}").get_data(as_text=True)
    assert f"Newest run of production v1 · #{old.id}" in series_page
    monitoring = client.get("/monitoring").get_data(as_text=True)
    assert f"Production v1's newest run #{old.id}" in monitoring

    versions.register_version(storage, name, **artifact, model_kind="hgb", stage="staging")
    versions.promote(storage, name, 3, force=True)  # production without a run yet: no latest run
    missing = client.get("/api/v1/forecast-runs/latest.csv")
    assert missing.status_code == 404 and "production model" in missing.get_json()["error"]
    assert "No run of the production model yet" in client.get("/forecast-runs").get_data(as_text=True)
