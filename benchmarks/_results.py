"""The JSON a benchmark writes: its figures plus where and when they were measured.

Every figure moves with the code and with the machine's load, so each file carries the commit it was
measured at, the date and the load average at start and end; benchmarks/results.py turns the files
into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded for a report."""
    return [round(x, 2) for x in os.getloadavg()]


def commit() -> str:
    """The checkout's short commit, with "+changes" when tracked files differ from it (or "unknown")."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+changes" if changed else head


def provenance(benchmark: str, load_start: list[float] | tuple[float, ...]) -> dict[str, Any]:
    """The benchmark's name, commit, UTC date, load average at start and now, and its arguments."""
    return {
        "benchmark": benchmark,
        "commit": commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": {"start": [round(x, 2) for x in load_start], "end": load_average()},
        "cpus": os.cpu_count(),
        "argv": sys.argv[1:],
    }


def write_json(
    path: str | Path, benchmark: str, figures: dict[str, Any], load_start: list[float] | tuple[float, ...]
) -> None:
    """Write `figures` with their provenance under "run" (results.py reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {**figures, "run": provenance(benchmark, load_start)}
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
