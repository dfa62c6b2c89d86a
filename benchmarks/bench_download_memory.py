"""How much a gunicorn worker's memory grows while it serves a forecast run's CSV, at 1x and 20x rows.

    .venv/bin/python benchmarks/bench_download_memory.py                  # 172,536 rows and 20x that
    .venv/bin/python benchmarks/bench_download_memory.py --rows 10400 --json out.json   # seconds
    .venv/bin/python benchmarks/bench_download_memory.py --concurrent 4   # and 4 downloads at once

A temp instance with a small model in production (benchmarks/load.py's prepare) and two stored runs
of its version: one of --rows rows (the real data's run is 172,536: 3,318 series x 52 weeks) and one
of --multiple times as many (the same series copied under other store numbers, in the database).
One gunicorn worker on 127.0.0.1 serves GET /api/v1/forecast-runs/<id>.csv; its resident memory is
sampled every 10 ms while the whole body is read and thrown away. Per run: rows, CSV size, seconds,
the worker's resident memory before, and its growth at the peak and after. The target (a worker
grows by less than 50 MB whatever the run's size) is reported, not enforced; exit status 1 when a
download fails or is incomplete. The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_json  # noqa: E402 - after the path set-up
from benchmarks.load import Service, free_port, prepare  # noqa: E402

log = logging.getLogger("bench_download_memory")

REAL_RUN_ROWS = 172_536
TARGET_GROWTH_MB = 50.0
WEEKS = 52
STORE_OFFSET = 10_000  # the copies' store numbers: the series' own plus k x this


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rows(run_id: int, through: dt.date, series: int) -> Iterator[tuple]:
    for s in range(series):
        store, dept = s // 100 + 1, s % 100 + 1
        for lag in range(1, WEEKS + 1):
            week = (through + dt.timedelta(weeks=lag)).isoformat()
            base = 10_000.0 + 37.0 * s + lag
            yield (run_id, store, dept, week, lag, base, base * 0.9, base * 1.1, base * 0.8, base * 1.2, base)


def store_runs(database: Path, version: str, through: dt.date, rows: int, multiple: int) -> dict[str, int]:
    """Two runs of the production version: `rows` rows, and `multiple` times as many; their ids."""
    series = max(1, rows // WEEKS)
    columns = "run_id, store, dept, week, lag, prediction, lower_80, upper_80, lower_95, upper_95, naive"
    connection = sqlite3.connect(database)
    try:
        ids = {}
        for name, weeks_later, count in (("1x", 1, series), (f"{multiple}x", 2, series * multiple)):
            cursor = connection.execute(
                "INSERT INTO forecast_runs (created_at, model_version, data_through, lineage, horizon, "
                "series, rows, seconds) VALUES (?, ?, ?, NULL, ?, ?, ?, 0)",
                (
                    dt.datetime.now().isoformat(sep=" "),
                    version,
                    (through + dt.timedelta(weeks=weeks_later)).isoformat(),
                    WEEKS,
                    count,
                    count * WEEKS,
                ),
            )
            ids[name] = cursor.lastrowid
        connection.executemany(
            f"INSERT INTO forecast_rows ({columns}) VALUES ({', '.join('?' * 11)})",
            _rows(ids["1x"], through, series),
        )
        copied = columns.replace("run_id, store", "?, store + ?")
        for k in range(multiple):
            connection.execute(
                f"INSERT INTO forecast_rows ({columns}) SELECT {copied} FROM forecast_rows WHERE run_id = ?",
                (ids[f"{multiple}x"], k * STORE_OFFSET, ids["1x"]),
            )
        connection.commit()
        return ids
    finally:
        connection.close()


def download(port: int, run_id: int, result: dict[str, Any]) -> None:
    """GET the run's CSV and read it to the end in 64 KB pieces; bytes, lines and status in `result`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", f"/api/v1/forecast-runs/{run_id}.csv")
        response = connection.getresponse()
        result["status"] = response.status
        size = lines = 0
        last = b""
        while piece := response.read(1 << 16):
            size += len(piece)
            lines += piece.count(b"\n")
            last = piece[-1:]
        result.update(bytes=size, rows=lines - 1, ends_with_newline=last == b"\n")
    except (OSError, http.client.HTTPException) as error:
        result["error"] = repr(error)
    finally:
        connection.close()


def measure(port: int, worker: psutil.Process, run_id: int, concurrent: int = 1) -> dict[str, Any]:
    """`concurrent` downloads of one run at once, the worker's memory sampled throughout."""
    before = worker.memory_info().rss
    peak = before
    results: list[dict[str, Any]] = [{} for _ in range(concurrent)]
    threads = [threading.Thread(target=download, args=(port, run_id, r)) for r in results]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, worker.memory_info().rss)
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    after = worker.memory_info().rss
    failed = [r for r in results if r.get("status") != 200 or not r.get("ends_with_newline")]
    return {
        "concurrent": concurrent,
        "rows": results[0].get("rows"),
        "csv_mb": round((results[0].get("bytes") or 0) / 1e6, 1),
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before / 1e6, 1),
        "growth_peak_mb": round((peak - before) / 1e6, 1),
        "growth_after_mb": round((after - before) / 1e6, 1),
        "failed": len(failed),
        "errors": sorted({r.get("error") or f"status {r.get('status')}" for r in failed})[:3],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=REAL_RUN_ROWS, help="rows of the 1x run")
    parser.add_argument("--multiple", type=int, default=20, help="the larger run's size in runs of --rows")
    parser.add_argument("--concurrent", type=int, default=0, help="also this many downloads of it at once")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before = load_average()

    with tempfile.TemporaryDirectory(prefix="storecast-bench-download-") as tmp:
        workdir = Path(tmp)
        log.info("training and registering a small model (synthetic, 4 stores x 6 departments)...")
        env, info = prepare(workdir)
        started = time.perf_counter()
        database = workdir / "instance" / "storecast.db"
        ids = store_runs(database, "v1", info["origin"], args.rows, args.multiple)
        log.info("stored runs %s in %.1f s", ids, time.perf_counter() - started)
        port = free_port()
        env.update(GUNICORN_WORKERS="1", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_ACCESSLOG="/dev/null")
        service = Service(workdir=workdir, port=port, env=env)
        service.start()
        try:
            worker = psutil.Process(service.workers()[0])
            measure(port, worker, ids["1x"])  # warm-up: first-request imports and caches are not counted
            figures = {name: measure(port, worker, run_id) for name, run_id in ids.items()}
            if args.concurrent:
                name, big = f"{args.multiple}x x{args.concurrent} at once", ids[f"{args.multiple}x"]
                figures[name] = measure(port, worker, big, args.concurrent)
        finally:
            service.stop()

    result = {
        "rows_1x": args.rows,
        "multiple": args.multiple,
        "target_growth_mb": TARGET_GROWTH_MB,
        "runs": figures,
        "load_average": {"before": load_before, "after": load_average()},
    }
    print(f"\nload average {load_before} -> {load_average()}")  # noqa: T201 - the benchmark's output
    print(  # noqa: T201
        f"{'run':<18}{'rows':>11}{'CSV MB':>9}{'s':>8}{'RSS MB':>9}{'peak +MB':>10}{'after +MB':>11}  < 50 MB"
    )
    for name, f in figures.items():
        ok = "yes" if f["growth_peak_mb"] < TARGET_GROWTH_MB else "NO"
        print(  # noqa: T201
            f"{name:<18}{f['rows'] or 0:>11,}{f['csv_mb']:>9.1f}{f['seconds']:>8.2f}"
            f"{f['rss_before_mb']:>9.1f}{f['growth_peak_mb']:>10.1f}{f['growth_after_mb']:>11.1f}  {ok}"
            + (f"  FAILED {f['failed']}: {f['errors']}" if f["failed"] else "")
        )
    if args.json:
        write_json(args.json, "bench_download_memory", result, [float(x) for x in load_before.split()])
    return 1 if any(f["failed"] for f in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
