"""How cost grows with the chain: synthetic chains of 1x, 4x and 20x the real data's series.

    .venv/bin/python benchmarks/bench_scale.py                         # 45 and 180 stores
    .venv/bin/python benchmarks/bench_scale.py --sizes 45,180,900      # 20x too (minutes, GBs)
    .venv/bin/python benchmarks/bench_scale.py --stores 180 --json s.json   # one size
    .venv/bin/python benchmarks/bench_scale.py --smoke                 # seconds: the suite runs it
    .venv/bin/python benchmarks/bench_scale.py --combine 45.json 180.json   # table and growth of runs

Per size, in a process of its own (so one size's peak memory never counts against another's):
rows and series; load (generating the synthetic chain); feature building (panel, covariates,
origin state); training time and the process's peak resident memory during it (TRAIN_THREADS
threads); artifact size; the published run of every series x 52 weeks into a migrated SQLite
database (time, rows/s; `--dask` also on an embedded LocalCluster); the resident memory of one
gunicorn worker serving that model; the prediction-log and forecast-table sizes after a simulated
month (4 weekly runs stored; a week of 13-week forecasts of every series written through the
logging path, times 4).
With `--beside`, a retrain runs next to that gunicorn worker and /predict p50/p99 are measured
before and during it. Then the growth exponent of each phase: the slope of log(cost) over
log(series). Figures are printed; the load average is printed beside them because other work on the
machine moves every timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrate  # noqa: E402 - after the path set-up
from app.factory import create_app  # noqa: E402
from app.forecasting.engine import Engine  # noqa: E402
from app.forecasting.holdout import build_covariates  # noqa: E402
from app.forecasting.origin_state import origin_state  # noqa: E402
from app.forecasting.panel import Panel  # noqa: E402
from app.forecasting.synthetic import generate_dataset  # noqa: E402
from app.forecasting.training import limit_training_threads, save_model, split_params, train, training_threads  # noqa: E402
from app.loop import history, publish  # noqa: E402
from app.monitoring import prediction_log  # noqa: E402
from app.registry import versions  # noqa: E402
from app.storage import ForecastRun  # noqa: E402
from benchmarks._results import load_average as load_now  # noqa: E402
from benchmarks._results import write_json  # noqa: E402
from benchmarks.bench_http import measure  # noqa: E402
from benchmarks.load import Service, free_port  # noqa: E402

log = logging.getLogger("bench_scale")

REAL_SERIES = 3331
MONTH_RUNS = 4  # weekly published runs in a month
LOG_WEEKS = 13  # each series asked for a 13-week forecast once a week, every week logged
LOG_BATCH_SERIES = 1000
SMOKE = {"stores": 3, "depts": 5, "params": {"max_iter": 10, "max_leaf_nodes": 15, "origin_step": 8}}
PHASES = ("load_s", "features_s", "train_s", "train_peak_mb", "artifact_mb", "publish_s", "worker_rss_mb")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class PeakRss:
    """The process's resident memory sampled every 50 ms while a phase runs; the peak in MB."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._process = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def mb(self) -> float:
        return self.peak / 1e6


def timed(result: dict[str, Any], key: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = work()
    result[key] = round(time.perf_counter() - started, 3)
    log.info("%s: %.1f s (load %s)", key, result[key], load_average())
    return value


def table_bytes(storage: Any, table: str) -> int:
    """Bytes a table and its indexes take in the SQLite file (dbstat), else its rows x average row."""
    with storage.engine.connect() as connection:
        try:
            return int(
                connection.exec_driver_sql(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name = ? OR name IN "
                    "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
                    (table, table),
                ).scalar()
                or 0
            )
        except Exception:  # dbstat is a compile-time option of SQLite
            log.warning("SQLite without dbstat: table sizes unknown")
            return -1


def copy_run(storage: Any, run: publish.PublishedRun, weeks_later: int) -> None:
    """The run stored again as if published `weeks_later` weeks on (one run per week and version:
    publishing the same week again stores nothing), rows copied in the database."""
    through = run.data_through + dt.timedelta(weeks=weeks_later)
    with storage.session() as session:
        kept = ("model_version", "lineage", "horizon", "series", "rows", "seconds")
        figures = {name: getattr(run, name) for name in kept}
        copy = ForecastRun(data_through=through, **figures)
        session.add(copy)
        session.flush()
        columns = "store, dept, week, lag, prediction, lower_80, upper_80, lower_95, upper_95, naive"
        session.execute(
            text(
                f"INSERT INTO forecast_rows (run_id, {columns}) SELECT :copy, {columns} "
                "FROM forecast_rows WHERE run_id = :run"
            ),
            {"copy": copy.id, "run": run.id},
        )


def simulate_month(storage: Any, forecaster: Any, run: publish.PublishedRun, result: dict[str, Any]) -> None:
    """Three more weekly runs (four in all), and a week of logged 13-week forecasts of every series
    written through the logging path; the log's month is four such weeks (its rows are alike)."""
    for weeks_later in range(1, MONTH_RUNS):
        copy_run(storage, run, weeks_later)
    keys = np.flatnonzero(forecaster.state.has_history)
    weeks = [
        w.date().isoformat() for w in pd.date_range(forecaster.valid_range()[0], periods=LOG_WEEKS, freq="7D")
    ]
    logged = 0
    for start in range(0, len(keys), LOG_BATCH_SERIES):
        part = keys[start : start + LOG_BATCH_SERIES]
        asked = [
            {"store": int(s), "dept": int(d), "date": week}
            for s, d in zip(forecaster.panel.store[part], forecaster.panel.dept[part], strict=True)
            for week in weeks
        ]
        predictions = forecaster.predict_rows(asked)
        rows = prediction_log.to_rows(predictions, source="forecast", request_id=f"b{start}", latency_ms=1.0)
        prediction_log.write_rows(storage, rows)
        logged += len(rows)
    week_bytes = table_bytes(storage, "prediction_log")
    result["log_rows_month"] = logged * MONTH_RUNS
    result["log_table_mb"] = round(week_bytes * MONTH_RUNS / 1e6, 1)
    result["forecast_rows_month"] = result["publish_rows"] * MONTH_RUNS
    result["forecast_table_mb"] = round(table_bytes(storage, "forecast_rows") / 1e6, 1)


def serve_and_measure(
    workdir: Path, database_url: str, models: Path, result: dict[str, Any], beside: bool, dataset: Any
) -> None:
    """One gunicorn worker on the registered model: its resident memory, and (beside) /predict while
    a retrain runs in this process with TRAIN_THREADS threads."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "FLASK_"))},
        "SECRET_KEY": uuid.uuid4().hex,
        "STORECAST_INSTANCE": str(workdir / "instance"),
        "DATABASE_URL": database_url,
        "MODELS_DIR": str(models),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESSLOG": str(workdir / "access.log"),
        "LOG_LEVEL": "warning",
        "PREDICTION_LOGGING": "false",
    }
    service = Service(workdir, port, env)
    store, dept = int(dataset.sales["store"].iloc[0]), int(dataset.sales["dept"].iloc[0])
    week = (dataset.last_week + dt.timedelta(weeks=1)).date().isoformat()
    body = json.dumps({"store": store, "dept": dept, "date": week}).encode()
    try:
        service.start(timeout=300)
        quiet = measure(port, "/api/v1/predict", body, 100)
        worker = psutil.Process(service.workers()[0])
        result["worker_rss_mb"] = round(worker.memory_info().rss / 1e6, 1)
        result["worker_uss_mb"] = round(worker.memory_full_info().uss / 1e6, 1)  # its own pages
        result["predict_p50_ms"], result["predict_p99_ms"] = round(quiet["median"], 1), round(quiet["p99"], 1)
        if beside:
            done = threading.Event()
            latencies: list[dict[str, float]] = []

            def load() -> None:
                while not done.is_set():
                    latencies.append(measure(port, "/api/v1/predict", body, 50, warmup=0))

            client = threading.Thread(target=load, daemon=True)
            client.start()
            with limit_training_threads(int(os.environ.get("TRAIN_THREADS") or 0)):
                timed(result, "train_beside_s", lambda: train(dataset, "hgb"))
            done.set()
            client.join()
            result["predict_beside_p50_ms"] = round(float(np.median([m["median"] for m in latencies])), 1)
            result["predict_beside_p99_ms"] = round(max(m["p99"] for m in latencies), 1)
            result["predict_beside_requests"] = 50 * len(latencies)
    finally:
        service.stop()


def run_size(stores: int, *, smoke: bool, beside: bool, dask: bool, depts: int = 80) -> dict[str, Any]:
    """Every phase for one chain size; returns the figures."""
    result: dict[str, Any] = {
        "stores": stores,
        "load_before": load_average(),
        "threads": training_threads(int(os.environ.get("TRAIN_THREADS") or 0)),
    }
    params = SMOKE["params"] if smoke else None
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        dataset = timed(result, "load_s", lambda: generate_dataset(seed=3, n_stores=stores, n_depts=depts))
        result["rows"] = len(dataset.sales)
        result["series"] = int(dataset.sales.groupby(["store", "dept"]).ngroups)

        def features() -> None:
            panel = Panel.from_sales(dataset.sales)
            build_covariates(dataset, panel, panel.last_week)
            origin_state(panel, panel.last_week, split_params(params)[0])

        timed(result, "features_s", features)
        with PeakRss() as peak, limit_training_threads(int(os.environ.get("TRAIN_THREADS") or 0)):
            trained = timed(result, "train_s", lambda: train(dataset, "hgb", params=params))
        result["train_peak_mb"] = round(peak.mb, 1)
        result["training_series"] = trained.metadata["training_window"]["training_series"]
        result["backtest_ratio"] = round(trained.metadata["backtest"].get("ratio_to_baseline", 0.0), 3)
        models = workdir / "models"
        info = save_model(trained, str(models))
        result["artifact_mb"] = round(info.path.stat().st_size / 1e6, 2)
        del trained

        (workdir / "instance").mkdir()
        database_url = f"sqlite:///{workdir / 'instance' / 'storecast.db'}"
        migrate.upgrade(database_url)
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": database_url, "MODELS_DIR": str(models)})
        storage = app.extensions["storage"]
        versions.register_version(
            storage,
            app.config["MODEL_NAME"],
            artifact_path=info.path,
            artifact_sha256=info.sha256,
            model_kind="hgb",
            stage="production",
            by="benchmark",
            data_source=info.metadata.get("data_source"),
            data_lineage=info.metadata.get("data_lineage"),
        )
        forecaster, source = history.rolled_production(storage, app.config["MODEL_NAME"])
        run = timed(result, "publish_s", lambda: publish.publish(storage, forecaster, source=source))
        result["publish_rows"] = run.rows
        result["publish_rows_per_s"] = round(run.rows / result["publish_s"])
        if dask:
            engine = Engine("dask", workers=2 if smoke else 0)
            timed(  # the same week again: replaced (force), so it is computed and stored again
                result,
                "publish_dask_s",
                lambda: publish.publish(storage, forecaster, engine=engine, source=source, force=True),
            )
        simulate_month(storage, forecaster, run, result)
        storage.dispose()
        if not smoke:
            serve_and_measure(workdir, database_url, models, result, beside, dataset)
    result["load_after"] = load_average()
    return result


def exponents(results: list[dict[str, Any]]) -> dict[str, float]:
    """Per phase, the least-squares slope of log(cost) over log(series): 1.0 grows linearly."""
    out = {}
    series = np.log([r["series"] for r in results])
    for phase in PHASES:
        values = [r.get(phase) for r in results]
        if len(results) < 2 or any(v is None or v <= 0 for v in values):
            continue
        out[phase] = round(float(np.polyfit(series, np.log(values), 1)[0]), 2)
    return out


def extrapolate(results: list[dict[str, Any]], series: int) -> dict[str, float]:
    """Each phase at `series`, from the largest measured size along the slope between the two largest:
    fixed costs (imports, libraries) flatten the slope at small sizes, so the whole fit underestimates."""
    largest = sorted(results, key=lambda r: r["series"])[-2:]
    growth = exponents(largest)
    factor = series / largest[-1]["series"]
    return {phase: round(largest[-1][phase] * factor**slope, 1) for phase, slope in growth.items()}


def print_table(results: list[dict[str, Any]]) -> None:
    columns = [
        ("stores", "{:,}"),
        ("series", "{:,}"),
        ("rows", "{:,}"),
        ("load_s", "{:.1f}"),
        ("features_s", "{:.1f}"),
        ("train_s", "{:.1f}"),
        ("train_peak_mb", "{:,.0f}"),
        ("training_series", "{:,}"),
        ("backtest_ratio", "{:.3f}"),
        ("artifact_mb", "{:.1f}"),
        ("publish_s", "{:.1f}"),
        ("publish_rows_per_s", "{:,}"),
        ("publish_dask_s", "{:.1f}"),
        ("worker_rss_mb", "{:,.0f}"),
        ("worker_uss_mb", "{:,.0f}"),
        ("log_table_mb", "{:,.1f}"),
        ("forecast_table_mb", "{:,.1f}"),
        ("train_beside_s", "{:.1f}"),
        ("predict_p99_ms", "{:.0f}"),
        ("predict_beside_p99_ms", "{:.0f}"),
        ("load_before", "{}"),
        ("load_after", "{}"),
    ]
    shown = [(name, fmt) for name, fmt in columns if any(name in r for r in results)]
    print("| " + " | ".join(name for name, _ in shown) + " |")
    print("|" + "---|" * len(shown))
    for r in results:
        print("| " + " | ".join(fmt.format(r[name]) if name in r else "" for name, fmt in shown) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="45,180", help="store counts, comma-separated")
    parser.add_argument("--stores", type=int, default=None, help="one size in this process")
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny chain, no gunicorn: seconds")
    parser.add_argument("--beside", action="store_true", help="also retrain beside the serving worker")
    parser.add_argument("--dask", action="store_true", help="also publish on an embedded LocalCluster")
    parser.add_argument(
        "--combine", nargs="+", type=Path, default=None, help="report on --json files of sizes"
    )
    parser.add_argument("--extrapolate", type=int, default=500_000, help="series to extrapolate to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    load_start = load_now()

    if args.smoke or args.stores is not None:
        stores = SMOKE["stores"] if args.smoke else args.stores
        depts = SMOKE["depts"] if args.smoke else 80
        result = run_size(stores, smoke=args.smoke, beside=args.beside, dask=args.dask, depts=depts)
        print_table([result])
        if args.json_out:
            write_json(args.json_out, "bench_scale", result, load_start)
        return 0

    results = [json.loads(path.read_text()) for path in args.combine or []]
    with tempfile.TemporaryDirectory(prefix="bench-scale-json-") as tmp:
        for stores in (int(s) for s in args.sizes.split(",")) if not results else ():
            out = Path(tmp) / f"{stores}.json"
            command = [sys.executable, __file__, "--stores", str(stores), "--json", str(out)]
            command += ["--beside"] * args.beside + ["--dask"] * args.dask
            subprocess.run(command, check=True)
            results.append(json.loads(out.read_text()))
    print_table(results)
    growth = exponents(results)
    print("growth exponents (cost ~ series^k): " + ", ".join(f"{k} {v}" for k, v in growth.items()))
    if growth:
        ahead = extrapolate(results, args.extrapolate)
        print(f"at {args.extrapolate:,} series: " + ", ".join(f"{k} {v:,}" for k, v in ahead.items()))
    if args.json_out:
        write_json(args.json_out, "bench_scale", {"sizes": results, "exponents": growth}, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
