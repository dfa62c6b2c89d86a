"""The prediction log: one row per prediction, ids in order, nothing lost with concurrent writers."""

from __future__ import annotations

import math
import multiprocessing
import threading

import pytest
from sqlalchemy import func, select

from app.monitoring.metrics import COUNTERS
from app.monitoring.prediction_log import log_predictions
from app.storage import PredictionLog, Storage
from tests.helpers.predictions import simple_predictions


def _count(storage: Storage) -> int:
    with storage.session() as session:
        return session.execute(select(func.count()).select_from(PredictionLog)).scalar_one()


def _served(source: str) -> float:
    return COUNTERS.get_sample_value("storecast_predictions_served_total", {"source": source}) or 0.0


def test_logs_every_prediction_with_ids_in_order(mon_app):
    predictions = simple_predictions(5)
    predictions[2]["inputs"]["markdown1"] = math.nan
    served_before = _served("forecast")
    ids = log_predictions(
        mon_app.extensions["storage"], predictions, source="forecast", request_id="req-1", latency_ms=12.5
    )
    assert len(ids) == 5 and ids == sorted(ids)
    with mon_app.extensions["storage"].session() as session:
        rows = session.scalars(select(PredictionLog).order_by(PredictionLog.id)).all()
        assert [r.id for r in rows] == ids
        assert [r.week for r in rows] == [p["week"] for p in predictions]
        assert rows[0].source == "forecast" and rows[0].request_id == "req-1" and rows[0].latency_ms == 12.5
        assert rows[2].inputs["markdown1"] is None  # NaN is stored as JSON null
        assert rows[0].assumed == {"temperature": "features.csv"}
        assert rows[0].upper_95 == pytest.approx(predictions[0]["upper_95"])
    assert _served("forecast") == served_before + 5


def test_unknown_source_is_refused(mon_app):
    with pytest.raises(ValueError, match="source"):
        log_predictions(
            mon_app.extensions["storage"],
            simple_predictions(1),
            source="elsewhere",
            request_id="r",
            latency_ms=1,
        )


def test_concurrent_threads_lose_nothing(mon_app):
    storage = mon_app.extensions["storage"]

    def serve(worker: int) -> None:
        for i in range(40):
            log_predictions(
                storage, simple_predictions(3), source="api", request_id=f"{worker}-{i}", latency_ms=1
            )

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(storage) == 6 * 40 * 3


def test_each_request_gets_the_ids_of_its_own_rows(mon_app):
    """Requests that share one group commit each get back the ids of the rows they sent, in order."""
    storage = mon_app.extensions["storage"]
    answers: dict[str, list[int]] = {}
    start = threading.Barrier(8)

    def serve(worker: int) -> None:
        start.wait()
        for i in range(25):
            rid = f"{worker}-{i}"
            answers[rid] = log_predictions(
                storage, simple_predictions(1 + i % 3), source="api", request_id=rid, latency_ms=1
            )

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with storage.session() as session:
        stored = dict(session.execute(select(PredictionLog.id, PredictionLog.request_id)).all())
    for rid, ids in answers.items():
        assert ids == sorted(ids) and {stored[i] for i in ids} == {rid}
    assert len(stored) == sum(len(ids) for ids in answers.values())


def test_a_failed_commit_fails_every_request_in_it(mon_app):
    """No request is answered as logged when its rows were not committed."""
    storage = mon_app.extensions["storage"]
    PredictionLog.__table__.drop(storage.engine)
    failures = []

    def serve(worker: int) -> None:
        try:
            rows = simple_predictions(2)
            log_predictions(storage, rows, source="api", request_id=str(worker), latency_ms=1)
        except Exception as error:  # noqa: BLE001 - the test collects what each request saw
            failures.append(error)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) == 6
    PredictionLog.__table__.create(storage.engine)
    assert log_predictions(storage, simple_predictions(1), source="api", request_id="after", latency_ms=1)


def _process_writer(url: str, worker: int, requests: int) -> None:
    storage = Storage(url)
    for i in range(requests):
        log_predictions(
            storage, simple_predictions(4), source="batch", request_id=f"p{worker}-{i}", latency_ms=2
        )
    storage.dispose()


def test_concurrent_processes_on_one_sqlite_file_lose_nothing(mon_app):
    """Like gunicorn workers: separate processes, separate connections, one SQLite file in WAL mode."""
    url = mon_app.config["DATABASE_URL"]
    # Spawned, not forked: this test process runs other tests' threads (SQLite checkpointers among
    # them), and a fork taken while one holds a lock leaves the child stuck on it.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(url, w, 150)) for w in range(4)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
            assert process.exitcode == 0
    finally:
        for process in processes:  # a stuck writer must not hold the test run open at exit
            if process.is_alive():
                process.kill()
    assert _count(mon_app.extensions["storage"]) == 4 * 150 * 4


def test_the_group_commit_writes_on_its_own_connection_and_survives_a_pool_reset(mon_app):
    """The log's connection is not the pool's: no pool connection stays checked out, and disposing
    the pool (as a forked worker does) leaves later writes working."""
    storage = mon_app.extensions["storage"]
    first = log_predictions(storage, simple_predictions(2), source="api", request_id="a", latency_ms=1)
    assert storage.engine.pool.checkedout() == 0
    storage.engine.dispose()
    second = log_predictions(storage, simple_predictions(3), source="api", request_id="b", latency_ms=1)
    assert len(first) == 2 and len(second) == 3 and min(second) > max(first)
    assert _count(storage) == 5
