"""Where a gunicorn worker's time goes under load: py-spy samples one worker while wrk drives POST
/api/v1/predict (prediction logging on), and each sample is put in the phase its stack is in.

    .venv/bin/python benchmarks/profile_http.py                 # about a minute after training
    .venv/bin/python benchmarks/profile_http.py --seconds 15 --json benchmarks/results/profile_http.json

The phases, the first that matches from the innermost frame out: the prediction log's write (SQLite
included), the forecast (app/forecasting), request validation (pydantic and the request schemas),
serialising the answer (orjson and the response models), metrics (prometheus-client), Flask and
werkzeug's dispatch, and gunicorn itself (reading requests, writing responses, its threads). Only
samples of threads that were running count (py-spy leaves idle threads out), so the shares are of the
worker's CPU time, not of wall time.
"""

from __future__ import annotations

import argparse
import collections
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import load_average, write_json  # noqa: E402 - after the path set-up
from benchmarks._table import format_table  # noqa: E402
from benchmarks._wrk import available as wrk_available  # noqa: E402
from benchmarks._wrk import wrk  # noqa: E402
from benchmarks.bench_http import discover  # noqa: E402
from benchmarks.load import Service, free_port, prepare  # noqa: E402

log = logging.getLogger("profile_http")

# (phase, markers of a frame that belongs to it), checked from the innermost frame outwards.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("prediction log write", ("prediction_log.py", "sqlite3", "sqlalchemy")),
    ("forecast", ("app/forecasting/", "sklearn", "numpy", "pandas")),
    ("validation", ("pydantic", "app/web/schemas")),
    ("serialisation", ("orjson", "apidoc.py", "json/")),
    ("metrics", ("prometheus_client", "request_metrics.py", "request_log.py")),
    ("Flask dispatch", ("flask/", "werkzeug/", "app/web/")),
    ("gunicorn and threads", ("gunicorn/", "threading.py", "selectors.py", "socket.py", "concurrent/")),
]


def phase_of(stack: str) -> str:
    """The phase of one collapsed stack ("outer;...;inner"): the first phase one of its frames is in,
    reading from the innermost frame out."""
    for frame in reversed(stack.split(";")):
        for phase, markers in PHASES:
            if any(marker in frame for marker in markers):
                return phase
    return "other"


def phases(collapsed: str) -> dict[str, int]:
    """Samples per phase from py-spy's raw (collapsed) output: one "stack count" per line."""
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[phase_of(stack)] += int(count)
    return dict(counts.most_common())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="how long wrk drives and py-spy samples")
    parser.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_start = load_average()
    spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    if not wrk_available() or not Path(spy).exists():
        log.error("needs wrk (apt-get install -y wrk) and py-spy (requirements-dev.txt)")
        return 2

    with tempfile.TemporaryDirectory(prefix="storecast-profile-http-") as tmp:
        workdir = Path(tmp)
        env, _ = prepare(workdir)
        port = free_port()
        env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_ACCESSLOG="/dev/null", OMP_NUM_THREADS="1")
        service = Service(workdir=workdir, port=port, env=env)
        service.start()
        try:
            start, pairs = discover(port)
            store, dept = pairs[0]
            body = {"store": store, "dept": dept, "date": start}
            url = f"http://127.0.0.1:{port}/api/v1/predict"
            wrk(url, body, seconds=2, connections=args.connections)  # warm-up: model loaded, pools open
            worker = service.workers()[0]
            out = workdir / "profile.txt"
            command = [
                spy,
                "record",
                "--pid",
                str(worker),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "250",
            ]
            command += ["--nonblocking", "--format", "raw", "--output", str(out)]
            recorder = threading.Thread(
                target=subprocess.run, args=(command,), kwargs={"capture_output": True}
            )
            recorder.start()
            rate = wrk(url, body, seconds=args.seconds, connections=args.connections)
            recorder.join()
            samples = phases(out.read_text()) if out.exists() else {}
        finally:
            service.stop()

    total = sum(samples.values()) or 1
    table = [["phase", "samples", "share of the worker's CPU"]]
    table += [[name, f"{count:,}", f"{count / total:.1%}"] for name, count in samples.items()]
    print(format_table(table))
    load = " ".join(map(str, load_average()))
    print(f"\nwrk: {rate['requests_per_s']:,.0f} req/s while sampled; load average {load}")
    if args.json:
        write_json(args.json, "profile_http", {"phases": samples, "throughput": rate}, load_start)
    return 0 if samples else 1


if __name__ == "__main__":
    sys.exit(main())
