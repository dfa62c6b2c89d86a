"""How long Dask workers take to answer their first task of the core, and what they import for it.

    .venv/bin/python benchmarks/bench_worker_start.py [--repeats 3]

An embedded cluster of 2 workers (one thread each) is started and asked, through a function of
app.forecasting (Client.run), which packages it has imported; the time is from starting the cluster
to that answer, the median of `--repeats`. "with app.factory" preloads the application factory on the
workers (Flask, SQLAlchemy, every layer): what a worker would pay if a task of app.forecasting pulled
the web stack in. This script imports the core only, on purpose: spawned workers re-import the main
module, so a script that imported Flask would put it on every worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distributed import Client  # noqa: E402 - after the path set-up

from app.forecasting.engine import imported_packages, local_cluster  # noqa: E402
from benchmarks._results import write_json  # noqa: E402

WEB = {"flask", "werkzeug", "sqlalchemy", "alembic", "apscheduler", "pydantic"}
VARIANTS = {"core only": [], "with app.factory": ["app.factory"]}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(repeats: int) -> dict[str, dict[str, object]]:
    """Per variant: median seconds to the first answer, and the web packages a worker then holds."""
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    held: dict[str, list[str]] = {}
    for _ in range(repeats):
        for name, preload in VARIANTS.items():  # alternated, so the machine's load falls on both
            started = time.perf_counter()
            with local_cluster(2, preload=preload) as cluster, Client(cluster) as client:
                packages = client.run(imported_packages)
                seconds[name].append(time.perf_counter() - started)
            held[name] = sorted(WEB.intersection(*map(set, packages.values())))
    return {
        name: {"median_s": round(float(np.median(s)), 2), "web_packages": held[name]}
        for name, s in seconds.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    before = load_average()
    load_start = os.getloadavg()
    figures = measure(args.repeats)
    print(f"load average {before} -> {load_average()}")
    for name, row in figures.items():
        print(
            f"{name}: {row['median_s']} s to the first answer; web packages on a worker: "
            f"{row['web_packages']}"
        )
    if args.json:
        figures_out = {"repeats": args.repeats, "variants": figures}
        write_json(args.json, "bench_worker_start", figures_out, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
