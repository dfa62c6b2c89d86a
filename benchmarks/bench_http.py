"""HTTP latency and throughput of the JSON API: gunicorn with 2 workers on 127.0.0.1, a temp instance and
database, a small synthetic model registered as production, prediction logging on.

    .venv/bin/python benchmarks/bench_http.py                       # about a minute after training
    .venv/bin/python benchmarks/bench_http.py --seconds 15 --json benchmarks/results/bench_http.json

- latency (one client, a fresh connection per request, no queueing): median and p99 of GET /health (the
  baseline), POST /predict, POST /forecast (52 weeks) and POST /predict/batch (1,000 rows); the first two
  also with `"explain": true` (components and last year's sales: the forecast page asks for them);
- throughput from wrk (keep-alive connections, a C client that leaves the cores to the server): GET
  /health and POST /predict, one after the other in the same run, so their ratio is like for like;
- where the time of /predict and the 52-week forecast goes, phase by phase (benchmarks/_phases.py):
  parsing, validation, the forecast core, the log write, serialisation and Flask's dispatch timed
  in-process, and gunicorn, HTTP and threads as the rest of the HTTP median.
Targets: /predict median within 2x /health's; a 52-week forecast median <= 5 ms; /predict >= 1,500
requests/s and >= 0.5x /health's rate. Exit status 1 when a request fails; the targets are reported, not
enforced (a loaded machine misses them without the code being wrong): the load average is printed beside.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._phases import request_phases  # noqa: E402 - after the path set-up
from benchmarks._results import load_average, write_json  # noqa: E402
from benchmarks._wrk import available as wrk_available  # noqa: E402
from benchmarks._wrk import wrk  # noqa: E402
from benchmarks.load import Service, free_port, prepare  # noqa: E402

log = logging.getLogger("bench_http")

TARGETS = {"forecast52": 5.0, "batch1000": 150.0}
TARGET_PREDICT_VS_HEALTH = 2.0
TARGET_RPS = 1500.0
TARGET_RPS_VS_HEALTH = 0.5


def call(
    port: int, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
):
    """One request on a fresh connection; (status, parsed JSON, milliseconds)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, json.loads(data) if data else None, elapsed
    finally:
        connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(port: int, path: str, body: bytes | None, n: int, warmup: int = 3) -> dict[str, float]:
    """POST `body` to `path` (GET without a body) n times, one fresh connection each."""
    method = "POST" if body is not None else "GET"
    for _ in range(warmup):
        status, payload, _ = call(port, method, path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {payload}")
    times = []
    for _ in range(n):
        status, payload, ms = call(port, method, path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {payload}")
        times.append(ms)
    return {"n": n, "median": statistics.median(times), "p99": percentile(times, 99), "max": max(times)}


def explained(body: bytes) -> bytes:
    """The same request asking for the components."""
    return json.dumps({**json.loads(body), "explain": True}).encode()


def discover(port: int) -> tuple[str, list[tuple[int, int]]]:
    """The first forecastable week and the store-departments the model knows."""
    start = None
    pairs: list[tuple[int, int]] = []
    for store in range(1, 50):
        status, body, _ = call(port, "GET", f"/api/v1/stores/{store}/forecast?weeks=1")
        if status != 200:
            if start is None:
                raise RuntimeError(f"store forecast probe answered {status}: {body}")
            break
        start = start or body["start"]
        pairs.extend((store, d["dept"]) for d in body["departments"])
    return start, pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections")
    parser.add_argument("--n", type=int, default=300, help="sequential /predict requests for the latency run")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument(
        "--omp-threads",
        default="1",
        help="OMP_NUM_THREADS for the workers (1, recommended: a one-row HGB predict is slower with "
        "OpenMP threads fighting over 2 cores; 'inherit' keeps the environment's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_start = load_average()
    if not wrk_available():
        log.error("wrk is not installed (apt-get install -y wrk)")
        return 2

    with tempfile.TemporaryDirectory(prefix="storecast-bench-http-") as tmp:
        workdir = Path(tmp)
        log.info("training and registering a small model (synthetic, 4 stores x 6 departments)...")
        env, _ = prepare(workdir)
        port = free_port()
        env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
        env["GUNICORN_ACCESSLOG"] = "/dev/null"
        if args.omp_threads != "inherit":
            env["OMP_NUM_THREADS"] = str(args.omp_threads)
        service = Service(workdir=workdir, port=port, env=env)
        service.start()
        try:
            start, pairs = discover(port)
            store, dept = pairs[0]
            log.info(
                "gunicorn: 2 workers on 127.0.0.1:%d; %d store-departments; first week %s",
                port,
                len(pairs),
                start,
            )
            single = {"store": store, "dept": dept, "date": start}
            forecast = json.dumps({"store": store, "dept": dept, "start": start, "weeks": 52}).encode()
            rows = [
                {"store": s, "dept": d, "date": start} for s, d in (pairs * (1000 // len(pairs) + 1))[:1000]
            ]
            batch = json.dumps({"rows": rows}).encode()
            encoded = json.dumps(single).encode()
            latency: dict[str, Any] = {
                "health": measure(port, "/api/v1/health", None, args.n),
                "predict": measure(port, "/api/v1/predict", encoded, args.n),
                "forecast52": measure(port, "/api/v1/forecast", forecast, max(20, args.n // 6)),
                "batch1000": measure(port, "/api/v1/predict/batch", batch, max(10, args.n // 15)),
                "predict_explain": measure(port, "/api/v1/predict", explained(encoded), args.n),
                "forecast52_explain": measure(
                    port, "/api/v1/forecast", explained(forecast), max(20, args.n // 6)
                ),
            }
            base_url = f"http://127.0.0.1:{port}/api/v1"
            wrk(f"{base_url}/predict", single, seconds=2, connections=args.connections)  # warm-up
            run = {"seconds": args.seconds, "connections": args.connections}
            rates = {
                "health": wrk(f"{base_url}/health", **run),
                "predict": wrk(f"{base_url}/predict", single, **run),
            }
            logged = service_rows(service)
        finally:
            service.stop()
        # The same requests in-process, phase by phase: where a request's time goes.
        phases = request_phases(
            env,
            {"predict": ("/api/v1/predict", encoded), "forecast52": ("/api/v1/forecast", forecast)},
            args.n,
            {key: latency[key]["median"] for key in ("predict", "forecast52")},
        )

    load = load_average()
    print()
    print(f"{'endpoint':<28}{'n':>6}{'median ms':>12}{'p99 ms':>10}{'target ms':>11}  ok")
    labels = {
        "health": "GET /health (baseline)",
        "predict": "POST /predict",
        "forecast52": "POST /forecast (52 weeks)",
        "batch1000": "POST /predict/batch (1,000)",
        "predict_explain": "  ... /predict, explained",
        "forecast52_explain": "  ... /forecast 52, explained",
    }
    base = latency["health"]["median"]
    for key, label in labels.items():
        r = latency[key]
        target = TARGETS.get(key)
        if key == "predict":
            target = TARGET_PREDICT_VS_HEALTH * base
        ok = "" if target is None else "yes" if r["median"] <= target else "NO"
        shown = f"{target:>11.1f}" if target is not None else f"{'-':>11}"
        print(f"{label:<28}{r['n']:>6}{r['median']:>12.2f}{r['p99']:>10.2f}{shown}  {ok}")
    print(
        f"ratios to /health (same run): /predict {latency['predict']['median'] / base:.2f}x, "
        f"52-week forecast {latency['forecast52']['median'] / base:.1f}x; explained: /predict "
        f"{latency['predict_explain']['median'] / base:.1f}x, 52-week forecast "
        f"{latency['forecast52_explain']['median'] / base:.1f}x"
    )
    health, predict = rates["health"], rates["predict"]
    ratio = predict["requests_per_s"] / health["requests_per_s"]
    ok = "yes" if predict["requests_per_s"] >= TARGET_RPS and ratio >= TARGET_RPS_VS_HEALTH else "NO"
    print(
        f"\nwrk, {args.connections} connections x {args.seconds:.0f} s each: GET /health "
        f"{health['requests_per_s']:,.0f} req/s, POST /predict {predict['requests_per_s']:,.0f} req/s "
        f"({ratio:.2f}x /health; target >= {TARGET_RPS:,.0f} and >= {TARGET_RPS_VS_HEALTH}x: {ok}); "
        f"/predict median {predict['median_ms']:.2f} ms, p99 {predict['p99_ms']:.2f} ms; "
        f"{predict['non_2xx'] + predict['socket_errors']} failed; {logged:,} predictions in the log"
    )
    for key, found in phases.items():
        print(
            f"\n{labels[key]}, phase by phase (median ms of {found['n']}, in-process; HTTP median "
            f"{found['http_median_ms']:.2f} ms):"
        )
        for phase, ms in found["phases_ms"].items():
            print(f"  {phase:<52}{ms:>8.3f}")
    print(f"load average {' '.join(map(str, load))} (at start: {' '.join(map(str, load_start))})")
    failed = predict["non_2xx"] + predict["socket_errors"] + health["non_2xx"] + health["socket_errors"]
    if args.json:
        figures = {
            "latency_ms": latency,
            "throughput": rates,
            "predict_vs_health": ratio,
            "logged": logged,
            "phases": phases,
        }
        write_json(args.json, "bench_http", figures, load_start)
    return 1 if failed else 0


def service_rows(service: Service) -> int:
    """Rows in the service's prediction log: every acknowledged prediction must be there."""
    with sqlite3.connect(service.database) as connection:
        return connection.execute("SELECT count(*) FROM prediction_log").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
