"""The container image: its size, how long `make image` takes cold and warm, and the release check.

    .venv/bin/python -m benchmarks.bench_image [--cold] [--json benchmarks/results/image.json]

Runs scripts/image.sh twice (the second build finds every layer cached: the floor of a rebuild), then
scripts/image_check.sh, with podman, and reads the images' sizes from podman's store. `--cold` first
removes the images scripts/image.sh made, the local Debian base included, and builds without the
layer cache: what a new machine pays. Each figure carries the load average it was measured under,
since every step shares the machine's cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import ROOT, load_average, write_json  # noqa: E402 - after the path set-up

log = logging.getLogger("benchmarks.bench_image")
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
IMAGES = {
    "image": "localhost/storecast:latest",
    "proxy": "localhost/storecast-proxy:bookworm",
    "postgres": "localhost/storecast-postgres:15-bookworm",
    "base": "localhost/python:3.11-slim-bookworm",
}


def megabytes(image: str) -> float | None:
    """The image's size in podman's store (MB of 10^6 bytes, as podman lists it), None when absent."""
    done = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True
    )
    return round(int(done.stdout.strip()) / 1e6, 1) if done.returncode == 0 else None


def timed(command: list[str]) -> dict[str, Any]:
    """Run a script to completion (it must succeed); its wall time and the load average around it."""
    start = load_average()
    began = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "CONTAINER_ENGINE": "podman"})
    return {"seconds": round(time.monotonic() - began, 1), "load_start": start, "load_end": load_average()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cold", action="store_true", help="remove the images and the base first")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    figures: dict[str, Any] = {}
    if args.cold:
        present = [image for image in IMAGES.values() if megabytes(image) is not None]
        if present:
            subprocess.run([*PODMAN, "rmi", "-f", *present], check=True, capture_output=True)
        figures["build_cold"] = timed(["scripts/image.sh", "--no-cache"])
        log.info("cold build: %s", figures["build_cold"])
    figures["build_warm"] = timed(["scripts/image.sh"])
    log.info("warm build: %s", figures["build_warm"])
    figures["check"] = timed(["scripts/image_check.sh"])
    log.info("image check: %s", figures["check"])
    figures["size_mb"] = {name: megabytes(image) for name, image in IMAGES.items()}
    log.info("sizes (MB): %s", figures["size_mb"])
    if args.json:
        write_json(args.json, "image", figures, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
