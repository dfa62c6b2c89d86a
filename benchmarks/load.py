"""Load and fault benchmark: gunicorn with 2 workers on 127.0.0.1, a temp instance, a small real model.

    .venv/bin/python benchmarks/load.py                      # 60 s of mixed load
    .venv/bin/python benchmarks/load.py --seconds 20 --kill-worker --lock-check --restart-check

The mix: 70% single predictions (POST /api/v1/predict), 20% 13-week forecasts (POST /api/v1/forecast),
10% batches of 100 rows (POST /api/v1/predict/batch), from --clients threads, each request with its
own X-Request-ID. Checked and printed:
- throughput, p50/p99 latency per kind, and the count of 5xx answers (must be 0);
- every prediction acknowledged with a 200 is in prediction_log under its request id (nothing lost),
  and the log holds no row for a request that was refused;
- --kill-worker: one worker gets SIGKILL halfway; the service goes on, the master starts a new
  worker, and no acknowledged prediction is missing from the log;
- --lock-check: another process holds BEGIN EXCLUSIVE on the SQLite file for 2 s under load;
  every request succeeds after waiting or fails with a clear 503, none is silently lost;
- --restart-check: gunicorn stopped and started again: logs, runs and registry unchanged.
Exit status 1 when a check fails. Nothing listens beyond 127.0.0.1; everything is stopped on exit.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import http.client
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import load_average, write_json  # noqa: E402 - after the path set-up

log = logging.getLogger("load")

MIX = (("predict", 0.70), ("forecast", 0.20), ("batch", 0.10))
BATCH_ROWS = 100
FORECAST_WEEKS = 13


# the service under test


@dataclass
class Service:
    """A gunicorn master we started, on a temp instance; stopped by us and only by us."""

    workdir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "gunicorn.log"

    @property
    def database(self) -> Path:
        return self.workdir / "instance" / "storecast.db"

    def start(self, timeout: float = 60.0) -> None:
        handle = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError):
                status, _ = request(self.port, "GET", "/api/v1/ready", timeout=5)
                if status == 200 and len(self.workers()) >= int(self.env["GUNICORN_WORKERS"]):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # graceful: finish in-flight requests
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def workers(self) -> list[int]:
        """The master's child processes (its workers)."""
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []


def free_port() -> int:
    """A free port on 127.0.0.1 below the ephemeral range (32768-60999)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    """One HTTP request on a fresh connection (gunicorn's sync workers close after each answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = (
            {"Content-Type": "application/json", **(headers or {})} if payload else dict(headers or {})
        )
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace")
        return response.status, parsed
    finally:
        connection.close()


def prepare(workdir: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Migrate a fresh SQLite database and register a small trained model as production."""
    from app import migrate
    from app.factory import create_app
    from app.forecasting.synthetic import generate_dataset
    from app.registry.experiment import train_and_register

    instance = workdir / "instance"
    models = workdir / "models"
    instance.mkdir(parents=True)
    models.mkdir()
    database_url = f"sqlite:///{instance / 'storecast.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "FLASK_"))},
        "SECRET_KEY": uuid.uuid4().hex,
        "STORECAST_INSTANCE": str(instance),
        "DATABASE_URL": database_url,
        "MODELS_DIR": str(models),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": str(workdir / "access.log"),
        "LOG_LEVEL": "warning",
        "MODEL_REFRESH_SECONDS": "5",
    }
    started = time.perf_counter()
    migrate.upgrade(database_url)
    app = create_app(
        {"SECRET_KEY": env["SECRET_KEY"], "DATABASE_URL": database_url, "MODELS_DIR": str(models)}
    )
    dataset = generate_dataset(seed=11, n_stores=4, n_depts=6)
    version = train_and_register(
        app.extensions["storage"],
        dataset,
        "hgb",
        model_name=app.config["MODEL_NAME"],
        models_dir=models,
        params={"max_iter": 60},
        stage="production",
        by="benchmark",
        reason="load benchmark",
    )
    app.extensions["storage"].dispose()
    pairs = sorted({(int(s), int(d)) for s, d in dataset.sales[["store", "dept"]].itertuples(index=False)})
    origin = dataset.sales["date"].max().date()
    log.info(
        "prepared in %.1f s: model v%s, %d store-departments",
        time.perf_counter() - started,
        version.get("version"),
        len(pairs),
    )
    return env, {"pairs": pairs, "origin": origin}


# the load


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no answer (connection reset, timeout)
    latency_ms: float
    request_id: str
    predictions: int  # in the answer (200 only)
    error: str = ""
    started: float = 0.0


class Load:
    """Client threads sending the mix until stopped; every outcome kept."""

    def __init__(self, port: int, shape: dict[str, Any], clients: int, seed: int) -> None:
        self.port, self.shape, self.clients, self.seed = port, shape, clients, seed
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def _week(self, rng: random.Random) -> str:
        return (self.shape["origin"] + dt.timedelta(weeks=rng.randint(1, 26))).isoformat()

    def _body(self, kind: str, rng: random.Random) -> tuple[str, dict[str, Any], int]:
        pairs = self.shape["pairs"]
        store, dept = rng.choice(pairs)
        if kind == "predict":
            return "/api/v1/predict", {"store": store, "dept": dept, "date": self._week(rng)}, 1
        if kind == "forecast":
            start = (self.shape["origin"] + dt.timedelta(weeks=1)).isoformat()
            body = {"store": store, "dept": dept, "start": start, "weeks": FORECAST_WEEKS}
            return "/api/v1/forecast", body, FORECAST_WEEKS
        rows = []
        for _ in range(BATCH_ROWS):
            s, d = rng.choice(pairs)
            rows.append({"store": s, "dept": d, "date": self._week(rng)})
        return "/api/v1/predict/batch", {"rows": rows}, BATCH_ROWS

    def _client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        kinds, weights = zip(*MIX, strict=True)
        while not self._stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            path, body, expected = self._body(kind, rng)
            rid = uuid.uuid4().hex
            started = time.monotonic()
            status, predictions, error = 0, 0, ""
            try:
                status, payload = request(self.port, "POST", path, body, {"X-Request-ID": rid})
                if status == 200:
                    predictions = 1 if kind == "predict" else len(payload["predictions"])
                    if predictions != expected:
                        error = f"expected {expected} predictions, got {predictions}"
                elif isinstance(payload, dict):
                    error = str(payload.get("error"))[:200]
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
            outcome = Outcome(
                kind, status, (time.monotonic() - started) * 1000, rid, predictions, error, started - self.t0
            )
            with self._lock:
                self.outcomes.append(outcome)

    def start(self) -> None:
        self.t0 = time.monotonic()
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def logged_by_request(database: Path) -> collections.Counter[str]:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(
            "SELECT request_id, COUNT(*) FROM prediction_log GROUP BY request_id"
        ).fetchall()
    return collections.Counter(dict(rows))


def reconcile(outcomes: list[Outcome], database: Path) -> dict[str, Any]:
    """Acknowledged predictions against the log, request by request."""
    logged = logged_by_request(database)
    acknowledged = {o.request_id: o.predictions for o in outcomes if o.status == 200}
    refused = {o.request_id for o in outcomes if o.status not in (0, 200)}
    unanswered = {o.request_id for o in outcomes if o.status == 0}
    missing = {rid: n - logged.get(rid, 0) for rid, n in acknowledged.items() if logged.get(rid, 0) < n}
    return {
        "predictions_served": sum(acknowledged.values()),
        "rows_logged_for_served": sum(min(logged.get(rid, 0), n) for rid, n in acknowledged.items()),
        "served_but_not_logged": sum(missing.values()),
        "logged_for_refused_requests": sum(logged.get(rid, 0) for rid in refused),
        # A worker killed after its commit but before its answer: the row exists, the client saw no 200.
        "logged_for_unanswered_requests": sum(logged.get(rid, 0) for rid in unanswered),
        "rows_in_log": sum(logged.values()),
    }


def summarise(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    by_kind: dict[str, Any] = {}
    for kind, _ in MIX:
        latencies = [o.latency_ms for o in outcomes if o.kind == kind and o.status == 200]
        by_kind[kind] = {
            "requests": sum(1 for o in outcomes if o.kind == kind),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
        }
    ok = [o.latency_ms for o in outcomes if o.status == 200]
    statuses = collections.Counter(o.status for o in outcomes)
    return {
        "seconds": round(seconds, 1),
        "requests": len(outcomes),
        "throughput_rps": round(len(outcomes) / seconds, 1),
        "predictions_per_s": round(sum(o.predictions for o in outcomes) / seconds, 1),
        "p50_ms": round(percentile(ok, 50), 1),
        "p99_ms": round(percentile(ok, 99), 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "no_answer": statuses.get(0, 0),
        "by_kind": by_kind,
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
    }


def run_load(
    service: Service, shape: dict[str, Any], seconds: float, clients: int, seed: int, during=None
) -> list[Outcome]:
    """`seconds` of the mix; `during(load)` runs in this thread once the load is under way."""
    load = Load(service.port, shape, clients, seed)
    load.start()
    started = time.monotonic()
    if during is not None:
        during(load, seconds)
    time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    load.stop()
    return load.outcomes


# the phases


def phase_load(
    service: Service, shape: dict[str, Any], args: argparse.Namespace, checks: dict[str, bool]
) -> dict:
    outcomes = run_load(service, shape, args.seconds, args.clients, args.seed)
    result = summarise(outcomes, args.seconds)
    result["log"] = reconcile(outcomes, service.database)
    checks["load: zero 5xx"] = result["5xx"] == 0
    checks["load: every request answered"] = result["no_answer"] == 0
    checks["load: logged rows == predictions served"] = (
        result["log"]["served_but_not_logged"] == 0
        and result["log"]["rows_in_log"] == result["log"]["predictions_served"]
    )
    return result


def phase_kill_worker(
    service: Service, shape: dict[str, Any], args: argparse.Namespace, checks: dict
) -> dict:
    info: dict[str, Any] = {}

    def kill_one(load: Load, seconds: float) -> None:
        time.sleep(seconds / 2)
        before = service.workers()
        victim = before[0]
        info["workers_before"], info["killed"] = before, victim
        info["killed_at_s"] = round(time.monotonic() - load.t0, 2)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = service.workers()
            if len(now) >= len(before) and victim not in now:
                info["workers_after"] = now
                info["replaced_in_s"] = round(time.monotonic() - load.t0 - info["killed_at_s"], 2)
                break
            time.sleep(0.05)

    outcomes = run_load(service, shape, args.kill_seconds, args.clients, args.seed + 1, during=kill_one)
    result = summarise(outcomes, args.kill_seconds)
    result["kill"] = info
    result["log"] = reconcile(outcomes, service.database)
    after_kill = [o for o in outcomes if o.started > info.get("killed_at_s", 0) + 1.0]
    result["after_kill"] = {
        "requests": len(after_kill),
        "ok": sum(o.status == 200 for o in after_kill),
    }
    checks["kill-worker: master replaced the worker"] = "replaced_in_s" in info
    checks["kill-worker: service went on (all 200 a second after the kill)"] = bool(after_kill) and all(
        o.status == 200 for o in after_kill
    )
    checks["kill-worker: zero 5xx"] = result["5xx"] == 0
    checks["kill-worker: no acknowledged prediction lost"] = (
        result["log"]["served_but_not_logged"] == 0 and result["log"]["logged_for_refused_requests"] == 0
    )
    return result


def phase_lock(service: Service, shape: dict[str, Any], args: argparse.Namespace, checks: dict) -> dict:
    info: dict[str, Any] = {}

    def hold_lock(load: Load, seconds: float) -> None:
        time.sleep(1.0)
        holder = sqlite3.connect(service.database, isolation_level=None, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")
        info["locked_at_s"] = round(time.monotonic() - load.t0, 2)
        time.sleep(args.lock_seconds)
        holder.execute("ROLLBACK")
        holder.close()
        info["released_at_s"] = round(time.monotonic() - load.t0, 2)

    seconds = args.lock_seconds + 4.0
    outcomes = run_load(service, shape, seconds, args.clients, args.seed + 2, during=hold_lock)
    result = summarise(outcomes, seconds)
    result["lock"] = info
    result["log"] = reconcile(outcomes, service.database)
    during = [  # in flight at some moment while the lock was held
        o
        for o in outcomes
        if o.started <= info["released_at_s"] and o.started + o.latency_ms / 1000 >= info["locked_at_s"]
    ]
    result["during_lock"] = {
        "requests": len(during),
        "statuses": dict(collections.Counter(o.status for o in during)),
        "max_latency_ms": round(max((o.latency_ms for o in during), default=0.0), 1),
    }
    unclear = [o for o in outcomes if o.status not in (200, 503)]
    checks["lock: every request succeeded or got a clear 503"] = not unclear
    checks["lock: no acknowledged prediction lost, nothing logged for a 503"] = (
        result["log"]["served_but_not_logged"] == 0 and result["log"]["logged_for_refused_requests"] == 0
    )
    return result


def snapshot(database: Path) -> dict[str, Any]:
    tables = ("prediction_log", "runs", "model_versions", "stage_changes")
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        counts = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608
        production = connection.execute(
            "SELECT version, artifact_sha256 FROM model_versions WHERE stage = 'production'"
        ).fetchall()
        last = connection.execute("SELECT MAX(id) FROM prediction_log").fetchone()[0]
    return {**counts, "production": [list(row) for row in production], "last_log_id": last}


def phase_restart(service: Service, shape: dict[str, Any], checks: dict) -> dict:
    before = snapshot(service.database)
    started = time.monotonic()
    service.stop()
    service.start()
    restart_s = time.monotonic() - started
    after = snapshot(service.database)
    store, dept = shape["pairs"][0]
    week = (shape["origin"] + dt.timedelta(weeks=1)).isoformat()
    status, payload = request(
        service.port, "POST", "/api/v1/predict", {"store": store, "dept": dept, "date": week}
    )
    checks["restart: logs, runs and registry intact"] = before == after
    checks["restart: serves the same production version"] = status == 200 and str(
        payload.get("model_version")
    ).lstrip("v") == str(before["production"][0][0])
    return {
        "before": before,
        "after": after,
        "restart_s": round(restart_s, 2),
        "first_predict_status": status,
    }


# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the mixed load (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL a worker in the middle of a load")
    parser.add_argument("--kill-seconds", type=float, default=20.0, help="length of the kill-worker load")
    parser.add_argument("--lock-check", action="store_true", help="hold an exclusive SQLite lock under load")
    parser.add_argument(
        "--lock-seconds", type=float, default=2.0, help="how long the lock is held (default 2)"
    )
    parser.add_argument("--restart-check", action="store_true", help="restart gunicorn, compare the database")
    parser.add_argument("--all", action="store_true", help="every check")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures to this file as well")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, database)")
    args = parser.parse_args(argv)
    if args.all:
        args.kill_worker = args.lock_check = args.restart_check = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("app").setLevel(logging.WARNING)

    load_start = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="storecast-load-"))
    checks: dict[str, bool] = {}
    results: dict[str, Any] = {"cpus": os.cpu_count(), "workers": 2, "clients": args.clients}
    service = None
    try:
        env, shape = prepare(workdir)
        service = Service(workdir, free_port(), {**env, "GUNICORN_BIND": "127.0.0.1:0"})
        service.env["GUNICORN_BIND"] = f"127.0.0.1:{service.port}"
        service.start()
        log.info(
            "gunicorn on 127.0.0.1:%d, workers %s; %.0f s of load",
            service.port,
            service.workers(),
            args.seconds,
        )
        results["load"] = phase_load(service, shape, args, checks)
        report("load", results["load"])
        if args.kill_worker:
            results["kill_worker"] = phase_kill_worker(service, shape, args, checks)
            report("kill-worker", results["kill_worker"])
        if args.lock_check:
            results["lock"] = phase_lock(service, shape, args, checks)
            report("lock", results["lock"])
        if args.restart_check:
            results["restart"] = phase_restart(service, shape, checks)
            report("restart", results["restart"])
    finally:
        if service is not None:
            service.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log.info("kept %s", workdir)
    results["checks"] = checks
    print("\nchecks:")
    for name, passed in checks.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    if args.json:
        write_json(args.json, "load", results, load_start)
    return 0 if checks and all(checks.values()) else 1


def report(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name}")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
