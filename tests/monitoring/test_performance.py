"""Performance: service figures from the request log, live accuracy computed by hand."""

from __future__ import annotations

import pytest

from app.jobs.tasks import run_job
from app.monitoring import actuals, performance
from app.monitoring.prediction_log import log_predictions
from app.registry import versions
from app.storage import PerformanceSnapshot
from tests.helpers.clock import at


def _prediction(store, dept, week, value, version="v1"):
    return {
        "store": store, "dept": dept, "week": week, "horizon": 1, "prediction": value,
        "lower_80": value * 0.9, "upper_80": value * 1.1, "lower_95": value * 0.8, "upper_95": value * 1.2,
        "inputs": {}, "assumed": {}, "cold_start": False, "model_version": version,
    }  # fmt: skip


def test_live_accuracy_equals_the_hand_computed_value(mon_app):
    storage = mon_app.extensions["storage"]
    versions.register_version(
        storage, mon_app.config["MODEL_NAME"], artifact_path="/nowhere/v1.joblib", artifact_sha256="0" * 64,
        model_kind="hgb", by="tests", data_source="synthetic", data_lineage="a" * 16,
    )  # fmt: skip  # v1 in production: the actuals below are tagged with its lineage
    predictions = [
        _prediction(1, 1, "2012-11-02", 1100.0),  # actual 1000: error +100, inside 80 and 95
        _prediction(1, 1, "2012-11-23", 1500.0),  # actual 2000, holiday: error -500 (weight 5), outside both
        _prediction(1, 2, "2012-11-02", 450.0),  # actual 500: error -50, outside 80 [405, 495], inside 95
        _prediction(1, 3, "2012-11-02", 999.0),  # no actual: not scored
        _prediction(1, 1, "2012-11-02", 5000.0, version="v0"),  # another model's: not scored for v1
    ]
    with mon_app.app_context():
        log_predictions(
            mon_app.extensions["storage"], predictions, source="api", request_id="acc", latency_ms=4.0
        )
    csv = (
        "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
        "1,1,2012-11-02,1000,FALSE\n1,1,2012-11-23,2000,TRUE\n1,2,2012-11-02,500,FALSE\n"
    )
    with storage.session() as session:
        actuals.import_csv(session, csv)
    with storage.engine.connect() as connection:
        figures = performance.compute_performance(
            connection, at(1), at(-1), model_version="v1", backtest_wmae=300.0
        )
    assert figures.matched_actuals == 3 and figures.predictions == 5
    assert figures.live_wmae == pytest.approx((100 + 5 * 500 + 50) / (1 + 5 + 1))
    assert figures.live_mae == pytest.approx((100 + 500 + 50) / 3)
    assert figures.bias == pytest.approx((100 - 500 - 50) / 3)
    assert figures.coverage_80 == pytest.approx(1 / 3)
    assert figures.coverage_95 == pytest.approx(2 / 3)
    assert figures.backtest_wmae == 300.0


def test_service_figures_come_from_the_request_log(mon_app):
    @mon_app.get("/api/v1/test-unavailable")
    def unavailable():
        return {"error": "down"}, 503

    client = mon_app.test_client()
    for _ in range(8):
        assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/no-such-thing").status_code == 404
    assert client.get("/api/v1/test-unavailable").status_code == 503
    assert client.get("/static/css/app.css").status_code == 200  # static files are not counted
    assert mon_app.extensions["request_log"].flush() == 10
    with mon_app.extensions["storage"].engine.connect() as connection:
        service = performance.service_stats(connection, at(1), at(-1))
    assert (service["requests"], service["errors_4xx"], service["errors_5xx"]) == (10, 1, 1)
    assert 0 < service["latency_p50"] <= service["latency_p95"] <= service["latency_p99"]


def test_the_job_writes_a_snapshot(mon_app):
    mon_app.test_client().get("/api/v1/health")
    outcome = run_job(mon_app.extensions["jobs"], "performance", manual=True)
    assert outcome.ran and outcome.error is None
    with mon_app.extensions["storage"].session() as session:
        snapshot = session.get(PerformanceSnapshot, outcome.result["snapshot_id"])
    assert snapshot.requests == 1 and snapshot.live_wmae is None


def test_backtest_wmae_is_found_where_the_core_puts_it():
    assert performance.backtest_wmae_of({"wmae": 12.0}) == 12.0
    assert performance.backtest_wmae_of({"backtest": {"wmae": 13.0}}) == 13.0
    assert performance.backtest_wmae_of({}) is None
