"""One dataset, no mixing, on the monitoring side: actuals tagged with production's lineage, scored only
against forecasts of models of that lineage; live request and prediction counts; the stale flag."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.monitoring import actuals, performance
from app.monitoring.prediction_log import log_predictions
from app.registry import training_runs, versions
from app.storage import ActualSale, Run
from tests.helpers.admin import admin_headers
from tests.helpers.clock import at
from tests.helpers.predictions import simple_predictions

NAME = "storecast"
LINEAGE_A, LINEAGE_B = "a" * 16, "b" * 16
CSV = "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1000,FALSE\n1,1,2012-11-09,2000,FALSE\n"


def register(app, lineage: str, *, data_end: dt.date | None = None, stage: str | None = None) -> dict:
    """A version trained on `lineage` (production when it is the first, or when `stage` says so)."""
    storage = app.extensions["storage"]
    run_id = training_runs.start_run(storage, "train", "hgb", data_source=f"data-{lineage[0]}")
    if data_end is not None:
        with storage.session() as session:
            session.get(Run, run_id).data_end = data_end
    return versions.register_version(
        storage, NAME, artifact_path=f"/nowhere/{lineage}.joblib", artifact_sha256="0" * 64,
        model_kind="hgb", run_id=run_id, by="tests", data_source=f"data-{lineage[0]}", data_lineage=lineage,
        stage=stage,
    )  # fmt: skip


def lineages(app) -> list[str | None]:
    with app.extensions["storage"].session() as session:
        return list(session.scalars(select(ActualSale.lineage).order_by(ActualSale.week)))


def accuracy(app, version: str | None):
    with app.extensions["storage"].engine.connect() as connection:
        return performance.accuracy_stats(connection, at(1), at(-1), model_version=version)


def test_actuals_are_tagged_with_production_lineage(mon_app):
    storage = mon_app.extensions["storage"]
    with storage.session() as session:
        actuals.import_csv(session, CSV)
    assert lineages(mon_app) == [None, None]  # no model yet
    register(mon_app, LINEAGE_A)
    with storage.session() as session:
        assert actuals.import_csv(session, CSV).to_dict() == {
            "received": 2, "inserted": 0, "updated": 2, "unchanged": 0,
        }  # fmt: skip
        assert actuals.import_csv(session, CSV).updated == 0
    assert lineages(mon_app) == [LINEAGE_A, LINEAGE_A]


def test_the_api_and_the_page_tag_actuals(mon_app):
    register(mon_app, LINEAGE_A)
    client = mon_app.test_client()
    rows = [{"store": 2, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.0}]
    assert (
        client.post("/api/v1/actuals", json={"rows": rows}, headers=admin_headers(mon_app)).status_code == 200
    )
    assert lineages(mon_app) == [LINEAGE_A]


def test_predictions_are_never_scored_against_another_dataset(mon_app):
    """Data replaced while serving: a synthetic model's forecasts, then real data's model and its actuals."""
    storage = mon_app.extensions["storage"]
    register(mon_app, LINEAGE_A)  # v1
    with mon_app.app_context():
        log_predictions(
            storage, simple_predictions(2, start="2012-11-02"), source="api", request_id="a", latency_ms=1
        )
    assert register(mon_app, LINEAGE_B, stage="production")["stage"] == "production"  # v2: data switched
    with storage.session() as session:
        actuals.import_csv(session, CSV)  # tagged B
    assert lineages(mon_app) == [LINEAGE_B, LINEAGE_B]
    assert accuracy(mon_app, "v1")["matched_actuals"] == 0
    assert accuracy(mon_app, None)["matched_actuals"] == 0

    v2 = [{**row, "model_version": "v2"} for row in simple_predictions(2, start="2012-11-02")]
    with mon_app.app_context():
        log_predictions(storage, v2, source="api", request_id="b", latency_ms=1)
    assert accuracy(mon_app, "v2")["matched_actuals"] == 2
    assert accuracy(mon_app, None)["matched_actuals"] == 2  # still not v1's


def test_the_page_counts_requests_and_predictions_live(mon_app):
    """No performance job has run: the counts come from the logs at render time (last 24 hours)."""
    client = mon_app.test_client()
    for _ in range(3):
        client.get("/api/v1/health")
    with mon_app.app_context():
        log_predictions(
            mon_app.extensions["storage"], simple_predictions(7), source="api", request_id="r", latency_ms=1
        )
    html = client.get("/monitoring").get_data(as_text=True)
    assert "No performance snapshot yet" in html
    assert "Requests, last 24&nbsp;h" in html and 'data-testid="live-requests">3<' in html
    assert 'data-testid="live-predictions">7<' in html
    mon_app.extensions["request_log"].flush()
    with mon_app.extensions["storage"].engine.connect() as connection:
        counts = performance.live_counts(connection, at(-1))
    assert (counts["requests"], counts["predictions"]) == (4, 7)  # and the page's own request
    with mon_app.extensions["storage"].engine.connect() as connection:
        assert performance.live_counts(connection, at(25))["predictions"] == 0


def test_the_monitoring_page_flags_a_stale_production_model(mon_app):
    mon_app.config["STALE_AFTER_WEEKS"] = 1
    register(mon_app, LINEAGE_A, data_end=dt.date(2012, 10, 26))
    client = mon_app.test_client()
    assert 'data-testid="stale"' not in client.get("/monitoring/partials/health").get_data(as_text=True)
    with mon_app.extensions["storage"].session() as session:
        actuals.import_csv(session, CSV)  # newest week 2012-11-09: 2 weeks after the data's end
    html = client.get("/monitoring/partials/health").get_data(as_text=True)
    assert 'data-testid="stale"' in html
    assert "Production v1 is stale" in html and "2 weeks before the newest actual sales week" in html
