"""Hostile requests against gunicorn on 127.0.0.1: status, response size, time and worker memory for each.

    .venv/bin/python benchmarks/bench_hostile.py [--repeat 3] [--slow-clients 6]

One worker (so its memory is the one measured), this gunicorn.conf.py, a temp instance and a small
synthetic model in production (benchmarks/load.py's prepare). For each input the worker's peak resident
memory is reset (/proc/PID/clear_refs) and read back (VmHWM) after the answer; the growth printed is
that peak over the resident size before the request. Then some clients trickle their headers a byte at
a time while /api/v1/health is timed. Targets (reported, not enforced): a 4xx within 2 s,
a response under 100 kB, worker growth under 200 MB. Medians of --repeat runs; load average beside.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import load_average, write_json  # noqa: E402 - after the path set-up
from benchmarks.load import Service, free_port, prepare  # noqa: E402

log = logging.getLogger("bench_hostile")

ADMIN = "bench-admin-token"
TARGET_SECONDS, TARGET_BYTES, TARGET_MB = 2.0, 100_000, 200.0
REAL_TRAIN = ROOT.parent / "shared" / "data" / "walmart" / "train.csv"


def configured_threads() -> int:
    """The threads a worker has when GUNICORN_THREADS is unset (gunicorn.conf.py's default)."""
    found = re.search(r'"GUNICORN_THREADS", "(\d+)"', (ROOT / "gunicorn.conf.py").read_text())
    return int(found.group(1)) if found else 0


def _kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def _send(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, len(response.read())
    finally:
        connection.close()


def _csrf(port: int) -> tuple[str, str]:
    """A CSRF token and the session cookie it belongs to, from the batch page."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/batch")
        response = connection.getresponse()
        html = response.read().decode()
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    finally:
        connection.close()
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1), cookie


def _multipart(token: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode(),
        content,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def cases(port: int) -> list[tuple[str, str, str, bytes, dict[str, str]]]:
    """(name, method, path, body, headers) of every hostile input."""
    wide = b"Store,Dept,Date" + b",x" * 4_900_000 + b"\n1,1,2012-11-02\n"
    token, cookie = _csrf(port)
    page_body, page_type = _multipart(token, "wide.csv", wide)
    repeated = b"Store,Dept,Date,Weekly_Sales,IsHoliday" + b",Store" * 100_000 + b"\n1,1,2012-11-02,5,FALSE\n"
    deep = b"[" * 100_000 + b"]" * 100_000
    json_type = {"Content-Type": "application/json"}
    csv_type = {"Content-Type": "text/csv"}
    admin = {**json_type, "Authorization": f"Bearer {ADMIN}"}
    admin_csv = {**csv_type, "Authorization": f"Bearer {ADMIN}"}
    digits = b'{"store": ' + b"9" * 5000 + b', "dept": 1, "date": "2012-11-02"}'
    implausible = (
        b"Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,9999-12-31,5,FALSE\n1,1,2012-11-02,-99999999,FALSE\n"
    )
    return [
        ("batch CSV, 4.9M unknown columns (9.8 MB)", "POST", "/api/v1/predict/batch", wide, csv_type),
        ("/batch page, same file", "POST", "/batch", page_body,
         {"Content-Type": page_type, "Cookie": cookie, "HX-Request": "true"}),
        ("actuals CSV, a column 100,000 times", "POST", "/api/v1/actuals", repeated, admin_csv),
        ("JSON 100,000 deep: /predict", "POST", "/api/v1/predict", deep, json_type),
        ("JSON 100,000 deep: /predict/batch", "POST", "/api/v1/predict/batch", deep, json_type),
        ("JSON 100,000 deep: /actuals", "POST", "/api/v1/actuals", deep, admin),
        ("JSON 100,000 deep: promote (admin)", "POST", "/api/v1/models/v1/promote", deep, admin),
        ("5,000-digit integer: /predict", "POST", "/api/v1/predict", digits, json_type),
        ("actuals 9999-12-31 and -99,999,999", "POST", "/api/v1/actuals", implausible, admin_csv),
        ("alert resolve without the token", "POST", "/api/v1/alerts/1/resolve", b"{}", json_type),
        ("cross-site post (Origin), with the token", "POST", "/api/v1/actuals", implausible,
         {**admin_csv, "Origin": "https://evil.example"}),
    ]  # fmt: skip


def measure(port: int, worker: int, request: tuple, repeat: int) -> dict[str, float]:
    name, method, path, body, headers = request
    seconds, growth = [], []
    status = size = 0
    for _ in range(repeat):
        Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
        before = _kb(worker, "VmRSS")
        started = time.perf_counter()
        status, size = _send(port, method, path, body, {**headers, "Content-Length": str(len(body))})
        seconds.append(time.perf_counter() - started)
        growth.append((_kb(worker, "VmHWM") - before) / 1024)
    return {"status": status, "bytes": size, "s": statistics.median(seconds), "mb": statistics.median(growth)}


def _line(name: str, row: dict[str, float]) -> str:
    return f"{name:44} {row['status']:>6} {row['bytes']:>9,} {row['s']:>9.3f} {row['mb']:>9.1f}"


def slow_clients(port: int, count: int, seconds: float) -> dict[str, float]:
    """`count` clients trickle header bytes while /api/v1/health is timed; when were they dropped?"""
    dropped: list[float] = []

    def trickle() -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            try:
                while time.monotonic() - started < seconds:
                    sock.sendall(b"X")
                    time.sleep(0.5)
            except OSError:
                dropped.append(time.monotonic() - started)

    threads = [threading.Thread(target=trickle) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    health = []
    while any(thread.is_alive() for thread in threads):
        started = time.perf_counter()
        status, _ = _send(port, "GET", "/api/v1/health", None, {})
        health.append((time.perf_counter() - started) * 1000 if status == 200 else float("inf"))
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    return {
        "dropped": len(dropped),
        "dropped_after_max_s": max(dropped) if dropped else float("nan"),
        "health_n": len(health),
        "health_median_ms": statistics.median(health),
        "health_max_ms": max(health),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow-clients", type=int, default=6)
    parser.add_argument("--no-train-csv", action="store_true", help="skip importing the real train.csv")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    load_start = load_average()
    figures: dict[str, Any] = {"inputs": []}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print("load average before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="storecast-bench-hostile-") as tmp:
        workdir = Path(tmp)
        env, _ = prepare(workdir)
        env = {**env, "GUNICORN_WORKERS": "1", "STORECAST_ADMIN_TOKEN": ADMIN, "LOG_LEVEL": "error"}
        port = free_port()
        service = Service(workdir, port, {**env, "PORT": str(port)})
        service.start()
        failed = False
        try:
            worker = service.workers()[0]
            print(f"gunicorn: 1 worker (pid {worker}), {configured_threads()} threads, on 127.0.0.1:{port}")
            print(f"\n{'input':44} {'status':>6} {'bytes':>9} {'median s':>9} {'peak +MB':>9}  ok")
            for request in cases(port):
                row = measure(port, worker, request, args.repeat)
                ok = (
                    400 <= row["status"] < 500
                    and row["bytes"] < TARGET_BYTES
                    and row["s"] < TARGET_SECONDS
                    and row["mb"] < TARGET_MB
                )
                failed |= not ok
                figures["inputs"].append({"input": request[0], **row, "ok": ok})
                print(_line(request[0], row), " yes" if ok else " NO")
            if REAL_TRAIN.exists() and not args.no_train_csv:
                # Parsed whole, then refused by the synthetic model's sales bound: the cost of the upload.
                headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {ADMIN}"}
                request = ("real train.csv (12.8 MB), checked", "POST", "/api/v1/actuals",
                           REAL_TRAIN.read_bytes(), headers)  # fmt: skip
                row = measure(port, worker, request, 1)
                print(_line(request[0], row))
                figures["inputs"].append({"input": request[0], **row})
            slow = slow_clients(port, args.slow_clients, seconds=20)
            figures["slow_clients"] = {"clients": args.slow_clients, "threads": configured_threads(), **slow}
            print(
                f"\n{args.slow_clients} slow clients (a header byte every 0.5 s; 1 worker of "
                f"{configured_threads()} threads, 10 s header limit): {slow['dropped']} dropped, "
                f"the last after "
                f"{slow['dropped_after_max_s']:.1f} s; "
                f"/api/v1/health answered {slow['health_n']} times meanwhile, median "
                f"{slow['health_median_ms']:.1f} ms, max {slow['health_max_ms']:.1f} ms"
            )
        finally:
            service.stop()
    print("load average after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.json:
        write_json(args.json, "bench_hostile", figures, load_start)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
