"""Monitoring benchmark: what logging costs a request, and the drift + performance jobs over 1,000,000 rows.

    .venv/bin/python benchmarks/bench_monitoring.py            # everything
    .venv/bin/python benchmarks/bench_monitoring.py --skip-gunicorn --rows 200000

1. In-process: log_predictions for a 1-row and a 52-row request, against the same work without it.
2. gunicorn, 2 workers on 127.0.0.1, wrk for a few seconds, logging off then on (same run):
   /api/v1/predict when a model can be trained (the core's train/save_model), else a stand-in
   route that does what the API does around the model (parse JSON, log, answer). After a graceful
   stop, the rows in the prediction log must equal the predictions served (the access log's 200s).
3. Jobs: N synthetic predictions (default 1,000,000) logged over the last 24 h, 250,000 requests in
   the last 15 minutes and actual sales for a third of the keys, bulk-inserted into a temporary
   SQLite file; then the drift check (sampled) and the performance snapshot, timed together.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_json  # noqa: E402 - after the path set-up
from benchmarks._wrk import available as wrk_available  # noqa: E402
from benchmarks._wrk import wrk  # noqa: E402

log = logging.getLogger("bench_monitoring")
PORT = 8766
STAMP = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME format


# helpers


def _prediction(week: dt.date, horizon: int = 1) -> dict:
    value = 15000.0 + horizon
    return {
        "store": 1,
        "dept": 1,
        "week": week,
        "horizon": horizon,
        "prediction": value,
        "lower_80": value * 0.9,
        "upper_80": value * 1.1,
        "lower_95": value * 0.8,
        "upper_95": value * 1.2,
        "inputs": {
            "temperature": 61.2,
            "fuel_price": 3.6,
            "markdown1": 5000.0,
            "markdown2": None,
            "markdown3": 12.0,
            "markdown4": 300.0,
            "markdown5": 4200.0,
            "cpi": 211.1,
            "unemployment": 8.1,
            "is_holiday": False,
        },
        "assumed": {"markdown2": "missing", "temperature": "features.csv"},
        "cold_start": False,
        "model_version": "v1",
    }


def bench_in_process(repeat: int = 2000) -> dict:
    """Milliseconds per call of log_predictions (1 row, 52 rows) against the same loop without it."""
    from app.monitoring.prediction_log import log_predictions, to_rows
    from app.storage import Storage

    directory = Path(tempfile.mkdtemp(prefix="bench-mon-"))
    storage = Storage(f"sqlite:///{directory / 'bench.db'}")
    storage.create_all()
    week = dt.date(2012, 11, 2)
    results = {}
    for rows in (1, 52):
        batch = [_prediction(week + dt.timedelta(weeks=i), i + 1) for i in range(rows)]
        n = repeat if rows == 1 else repeat // 4
        started = time.perf_counter()
        for i in range(n):
            json.dumps([{**p, "week": str(p["week"])} for p in batch])  # the response both variants build
            to_rows(batch, source="api", request_id=f"x{i}", latency_ms=1.0)
        without = (time.perf_counter() - started) / n * 1000
        started = time.perf_counter()
        for i in range(n):
            json.dumps([{**p, "week": str(p["week"])} for p in batch])
            log_predictions(storage, batch, source="api", request_id=f"x{i}", latency_ms=1.0)
        with_logging = (time.perf_counter() - started) / n * 1000
        results[f"{rows}_rows"] = {
            "without_ms": round(without, 3),
            "with_ms": round(with_logging, 3),
            "logging_cost_ms": round(with_logging - without, 3),
        }
    storage.dispose()
    shutil.rmtree(directory, ignore_errors=True)
    return results


# gunicorn

STAND_IN_WSGI = '''
"""A stand-in for /api/v1/predict while no model can be trained: parse, log, answer."""
import time, uuid
from flask import request
from app.factory import create_app
from app.web import csrf
from app.monitoring.prediction_log import log_predictions
import datetime as dt

app = create_app()


@app.post("/bench/predict")
@csrf.exempt
def bench_predict():
    started = time.perf_counter()
    body = request.get_json()
    value = 15000.0 + body["store"]
    prediction = {"store": body["store"], "dept": body["dept"], "week": dt.date.fromisoformat(body["date"]),
                  "horizon": 1, "prediction": value, "lower_80": value * 0.9, "upper_80": value * 1.1,
                  "lower_95": value * 0.8, "upper_95": value * 1.2,
                  "inputs": {"temperature": 60.0, "cpi": 211.0, "is_holiday": False},
                  "assumed": {}, "cold_start": False, "model_version": "v1"}
    latency = (time.perf_counter() - started) * 1000
    storage = app.extensions["storage"]
    rid = uuid.uuid4().hex
    ids = log_predictions(storage, [prediction], source="api", request_id=rid, latency_ms=latency)
    out = {**prediction, "week": body["date"], "prediction_id": ids[0] if ids else None}
    return {"predictions": [out]}
'''


def _train_model(directory: Path, url: str) -> bool:
    """Register a small trained model as production; False when the core cannot train yet."""
    try:
        from app.forecasting.synthetic import generate_dataset
        from app.forecasting.training import save_model, train
    except ImportError as error:
        log.info("no trainable core yet (%s): using the stand-in route", error)
        return False
    from app.storage import ModelVersion, Storage

    trained = train(generate_dataset(seed=7, n_stores=4, n_depts=6), kind="hgb", params={"max_iter": 60})
    artifact = save_model(trained, directory / "models")
    storage = Storage(url)
    with storage.session() as session:
        session.add(
            ModelVersion(
                name="storecast",
                version=1,
                stage="production",
                artifact_path=str(artifact.path),
                artifact_sha256=artifact.sha256,
                model_kind="hgb",
                metrics=artifact.metadata.get("backtest", {}),
            )
        )
    storage.dispose()
    return True


def _serve(
    directory: Path, url: str, logging_on: bool, module: str, seconds: int, path: str, body: dict
) -> dict:
    access = directory / f"access-{int(logging_on)}.log"
    env = {
        **os.environ,
        "SECRET_KEY": "bench",
        "DATABASE_URL": url,
        "STORECAST_INSTANCE": str(directory / "instance"),
        "MODELS_DIR": str(directory / "models"),
        "PREDICTION_LOGGING": "true" if logging_on else "false",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": str(access),
        "LOG_LEVEL": "warning",
        "PYTHONPATH": f"{directory}:{ROOT}",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), module],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start: {server.stderr.read()[-2000:]}") from None
                time.sleep(0.3)
        wrk(
            f"http://127.0.0.1:{PORT}{path}", body, seconds=2, connections=8
        )  # warm-up (model load, first requests)
        result = wrk(f"http://127.0.0.1:{PORT}{path}", body, seconds=seconds, connections=16)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    served = sum(1 for line in access.read_text().splitlines() if f"POST {path}" in line and '" 200 ' in line)
    return {**result, "served_200": served}


def bench_gunicorn(seconds: int) -> dict:
    if not wrk_available():
        return {"skipped": "wrk not installed (apt-get install -y wrk)"}
    directory = Path(tempfile.mkdtemp(prefix="bench-mon-gunicorn-"))
    url = f"sqlite:///{directory / 'bench.db'}"
    from app.storage import Storage

    storage = Storage(url)
    storage.create_all()
    if _train_model(directory, url):
        module, path = "wsgi:app", "/api/v1/predict"
        body = {"store": 1, "dept": 1, "date": "2012-11-02"}
    else:
        (directory / "bench_wsgi.py").write_text(STAND_IN_WSGI)
        module, path = "bench_wsgi:app", "/bench/predict"
        body = {"store": 1, "dept": 1, "date": "2012-11-02"}
    runs = {}
    for logging_on in (False, True):
        before = _count(storage)
        run = _serve(directory, url, logging_on, module, seconds, path, body)
        run["logged_rows"] = _count(storage) - before
        runs["with_logging" if logging_on else "without_logging"] = run
    storage.dispose()
    with_logging = runs["with_logging"]
    # Every request above predicts one row (the warm-up's requests are served and logged too).
    with_logging["all_logged"] = with_logging["logged_rows"] == with_logging["served_200"]
    runs["route"] = path
    runs["cost_per_request_ms"] = round(
        1000 / with_logging["requests_per_s"] - 1000 / runs["without_logging"]["requests_per_s"], 3
    )
    shutil.rmtree(directory, ignore_errors=True)
    return runs


def _count(storage) -> int:
    with storage.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM prediction_log").scalar_one()


# jobs


def _fill(path: Path, rows: int, requests: int, seed: int = 0) -> None:
    """Bulk-insert synthetic log rows straight through sqlite3 (the setup is not what is timed)."""
    from app.forecasting.data import COVARIATE_COLUMNS
    from app.forecasting.synthetic import generate_dataset

    rng = np.random.default_rng(seed)
    dataset = generate_dataset(seed=3, n_stores=10, n_depts=20)
    sales = dataset.sales[["store", "dept", "date", "weekly_sales", "is_holiday"]]
    frame = sales.merge(dataset.features.drop(columns=["is_holiday"]), on=["store", "date"], how="left")
    covariates = list(COVARIATE_COLUMNS)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    chunk = 100_000
    picks_all = rng.integers(0, len(frame), rows)
    values = frame[covariates].to_numpy()
    stores, depts = frame["store"].to_numpy(), frame["dept"].to_numpy()
    weeks = frame["date"].dt.strftime("%Y-%m-%d").to_numpy()
    sales_values, holidays = frame["weekly_sales"].to_numpy(), frame["is_holiday"].to_numpy()
    offsets = np.sort(rng.uniform(0, 24 * 3600 - 1, rows))[::-1]
    for start in range(0, rows, chunk):
        picks = picks_all[start : start + chunk]
        batch = []
        for j, i in enumerate(picks):
            inputs = {
                name: (None if v != v else round(float(v), 3))
                for name, v in zip(covariates, values[i], strict=True)
            }
            inputs["is_holiday"] = bool(holidays[i])
            created = (now - dt.timedelta(seconds=float(offsets[start + j]))).strftime(STAMP)
            p = float(sales_values[i]) * float(rng.normal(1, 0.1))
            batch.append(
                (created, "bench", "api", "v1", int(stores[i]), int(depts[i]), weeks[i], 1,
                 json.dumps(inputs), "{}", 0, p, p * 0.9, p * 1.1, p * 0.8, p * 1.2, 3.0)
            )  # fmt: skip
        connection.executemany(
            "INSERT INTO prediction_log (created_at, request_id, source, model_version, store, dept, week,"
            " horizon, inputs, assumed, cold_start, prediction, lower_80, upper_80, lower_95, upper_95,"
            " latency_ms)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            batch,
        )
    # v1 and a third of the actuals share a data lineage, so the performance job scores them (it scores
    # a prediction only against actuals of its model's data).
    connection.execute(
        "INSERT INTO model_versions (name, version, stage, artifact_path, artifact_sha256, model_kind,"
        " metrics, created_at, data_lineage) VALUES ('storecast', 1, 'production', '-', '-', 'hgb', '{}', ?,"
        " 'bench')",
        (now.strftime(STAMP),),
    )
    actual = frame.sample(frac=1 / 3, random_state=seed)
    connection.executemany(
        "INSERT INTO actual_sales (store, dept, week, weekly_sales, is_holiday, ingested_at, lineage)"
        " VALUES (?,?,?,?,?,?,'bench')",
        [
            (int(s), int(d), w.strftime("%Y-%m-%d"), float(v), int(h), now.strftime(STAMP))
            for s, d, w, v, h in actual[["store", "dept", "date", "weekly_sales", "is_holiday"]].itertuples(
                index=False
            )
        ],
    )
    request_offsets = np.sort(rng.uniform(0, 15 * 60 - 1, requests))
    statuses = rng.choice([200, 200, 200, 200, 200, 200, 200, 200, 400, 500], requests)
    latencies = rng.gamma(2.0, 4.0, requests)
    connection.executemany(
        "INSERT INTO request_log (created_at, endpoint, method, status, latency_ms) VALUES (?,?,?,?,?)",
        [
            (
                (now - dt.timedelta(seconds=float(o))).isoformat(sep=" "),
                "/api/v1/predict",
                "POST",
                int(s),
                float(ms),
            )
            for o, s, ms in zip(request_offsets, statuses, latencies, strict=True)
        ],
    )
    connection.commit()
    connection.close()


def bench_jobs(rows: int, requests: int, keep_db: str | None = None) -> dict:
    from app.forecasting.synthetic import generate_dataset
    from app.monitoring import drift, drift_report, performance
    from app.storage import Storage

    directory = Path(keep_db).parent if keep_db else Path(tempfile.mkdtemp(prefix="bench-mon-jobs-"))
    path = Path(keep_db) if keep_db else directory / "jobs.db"
    reuse = path.exists()
    storage = Storage(f"sqlite:///{path}")
    storage.create_all()
    started = time.perf_counter()
    if not reuse:
        _fill(path, rows, requests)
    fill_s = time.perf_counter() - started
    with storage.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT count(*) FROM prediction_log").scalar_one()
        last = connection.exec_driver_sql("SELECT max(created_at) FROM prediction_log").scalar_one()
    reference = drift.reference_from_dataset(generate_dataset(seed=3, n_stores=10, n_depts=20))
    # The window ends just after the newest row: a reused database is judged as it was when filled.
    now = dt.datetime.fromisoformat(last) + dt.timedelta(seconds=1)
    timings = {}
    started = time.perf_counter()
    drift_result = drift_report.drift_check(
        storage, reference, version="v1", start=now - dt.timedelta(hours=24), end=now, seed=0
    )
    timings["drift_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with storage.engine.connect() as connection:
        figures = performance.compute_performance(
            connection, now - dt.timedelta(minutes=15), now, model_version="v1", backtest_wmae=2000.0
        )
    timings["performance_s"] = time.perf_counter() - started
    storage.dispose()
    size_mb = path.stat().st_size / 1e6
    if not keep_db:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "logged_predictions": rows,
        "requests_in_window": requests,
        "database_mb": round(size_mb),
        "fill_s": round(fill_s, 1),
        "drift_s": round(timings["drift_s"], 2),
        "performance_s": round(timings["performance_s"], 2),
        "total_s": round(timings["drift_s"] + timings["performance_s"], 2),
        "drift": {k: drift_result[k] for k in ("rows", "sampled", "features_drifted", "dataset_drift")},
        "performance": {
            "requests": figures.requests,
            "errors_5xx": figures.errors_5xx,
            "latency_p95": round(figures.latency_p95, 2),
            "matched_actuals": figures.matched_actuals,
            "live_wmae": round(figures.live_wmae, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="logged predictions for the jobs benchmark"
    )
    parser.add_argument(
        "--requests", type=int, default=250_000, help="request rows in the performance window"
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per gunicorn run")
    parser.add_argument("--skip-gunicorn", action="store_true")
    parser.add_argument("--db", help="keep the jobs database at this path (reused when it exists)")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    load_start = os.getloadavg()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    report = {"in_process": bench_in_process()}
    if not args.skip_gunicorn:
        report["gunicorn_2_workers"] = bench_gunicorn(args.seconds)
    if not args.skip_jobs:
        report["jobs"] = bench_jobs(args.rows, args.requests, args.db)
    print(json.dumps(report, indent=2))  # noqa: T201 - the benchmark's output
    if args.json:
        write_json(args.json, "bench_monitoring", report, load_start)
    gunicorn = report.get("gunicorn_2_workers", {})
    if "with_logging" in gunicorn:
        assert gunicorn["with_logging"]["all_logged"], "prediction log rows differ from predictions served"
        assert gunicorn["with_logging"]["requests_per_s"] >= 400, "below 400 requests/s with logging"
    if "jobs" in report and args.rows >= 1_000_000:
        assert report["jobs"]["total_s"] <= 15, "drift + performance over 1,000,000 rows took more than 15 s"


if __name__ == "__main__":
    main()
