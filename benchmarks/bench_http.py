"""HTTP latency and throughput of the JSON API: gunicorn with 2 workers on 127.0.0.1, a temp instance and
database, a small synthetic model registered as production, prediction logging on.

    .venv/bin/python benchmarks/bench_http.py                 # about a minute after training
    .venv/bin/python benchmarks/bench_http.py --seconds 5 --threads 4

Bounded load from Python threads (http.client; gunicorn's sync workers close each connection):
- latency (one client, no queueing): median and p99 of POST /predict, POST /forecast (52 weeks) and
  POST /predict/batch (1,000 rows); the first two also with `"explain": true` (components and last
  year's sales: the forecast page asks for them, API callers when they want them);
- throughput of POST /predict from --threads clients for --seconds.
Targets: /predict median <= 5 ms and >= 400 req/s; 52-week forecast median <= 30 ms;
1,000-row batch <= 150 ms. Exit status 1 when a request fails; the targets are reported, not enforced
(a loaded machine misses them without the code being wrong).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import load_average, write_json  # noqa: E402 - after the path set-up
from benchmarks.load import Service, free_port, prepare  # noqa: E402

log = logging.getLogger("bench_http")

TARGETS = {"predict": 5.0, "forecast52": 30.0, "batch1000": 150.0}
TARGET_RPS = 400.0


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


def throughput(port: int, body: bytes, threads: int, seconds: float) -> dict[str, float]:
    counts = [0] * threads
    failures = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            try:
                status, _, ms = call(port, "POST", "/api/v1/predict", body)
            except OSError:
                failures[i] += 1
                continue
            if status == 200:
                counts[i] += 1
                latencies[i].append(ms)
            else:
                failures[i] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    merged = [ms for chunk in latencies for ms in chunk]
    return {
        "requests": sum(counts),
        "failures": sum(failures),
        "rps": sum(counts) / elapsed,
        "median": statistics.median(merged) if merged else float("nan"),
        "p99": percentile(merged, 99) if merged else float("nan"),
    }


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
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the throughput run")
    parser.add_argument("--threads", type=int, default=8, help="client threads for the throughput run")
    parser.add_argument("--n", type=int, default=300, help="sequential /predict requests for the latency run")
    parser.add_argument(
        "--omp-threads",
        default="1",
        help="OMP_NUM_THREADS for the workers (1, recommended: a one-row HGB predict is slower with "
        "OpenMP threads fighting over 2 cores; 'inherit' keeps the environment's)",
    )
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_start = load_average()

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
            single = json.dumps({"store": store, "dept": dept, "date": start}).encode()
            forecast = json.dumps({"store": store, "dept": dept, "start": start, "weeks": 52}).encode()
            rows = [
                {"store": s, "dept": d, "date": start} for s, d in (pairs * (1000 // len(pairs) + 1))[:1000]
            ]
            batch = json.dumps({"rows": rows}).encode()
            results: dict[str, Any] = {
                "health": measure(port, "/api/v1/health", None, args.n),
                "predict": measure(port, "/api/v1/predict", single, args.n),
                "forecast52": measure(port, "/api/v1/forecast", forecast, max(20, args.n // 6)),
                "batch1000": measure(port, "/api/v1/predict/batch", batch, max(10, args.n // 15)),
                "predict_explain": measure(port, "/api/v1/predict", explained(single), args.n),
                "forecast52_explain": measure(
                    port, "/api/v1/forecast", explained(forecast), max(20, args.n // 6)
                ),
            }
            rate = throughput(port, single, args.threads, args.seconds)
        finally:
            service.stop()

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
    for key, label in labels.items():
        r = results[key]
        target = TARGETS.get(key)
        ok = "" if target is None else "yes" if r["median"] <= target else "NO"
        shown = f"{target:>11.0f}" if target is not None else f"{'-':>11}"
        print(f"{label:<28}{r['n']:>6}{r['median']:>12.1f}{r['p99']:>10.1f}{shown}  {ok}")
    base = results["health"]["median"]
    print(
        f"ratios to /health (same run): /predict {results['predict']['median'] / base:.1f}x, "
        f"52-week forecast {results['forecast52']['median'] / base:.1f}x; explained: /predict "
        f"{results['predict_explain']['median'] / base:.1f}x, 52-week forecast "
        f"{results['forecast52_explain']['median'] / base:.1f}x"
    )
    ok = "yes" if rate["rps"] >= TARGET_RPS else "NO"
    print(
        f"\nthroughput POST /predict, {args.threads} threads x {args.seconds:.0f} s: {rate['rps']:.0f} req/s "
        f"(target >= {TARGET_RPS:.0f}: {ok}); median {rate['median']:.1f} ms, p99 {rate['p99']:.1f} ms; "
        f"{rate['requests']} ok, {rate['failures']} failed"
    )
    if args.json:
        run = {**rate, "threads": args.threads, "seconds": args.seconds}
        figures = {"latency_ms": results, "throughput": run}
        write_json(args.json, "bench_http", figures, load_start)
    return 1 if rate["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
