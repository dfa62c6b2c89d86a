"""Write benchmarks/RESULTS.md from the benchmarks' JSON files.

    .venv/bin/python -m benchmarks.results [--dir benchmarks/results] [--out benchmarks/RESULTS.md]

Each benchmark run with `--json benchmarks/results/<benchmark>.json` leaves its figures there, stamped
with the commit, date and load average (benchmarks/_results.py). This turns every file into a table under
its benchmark's heading, newest first, and lists a benchmark without a file as not yet measured, so the
page never quotes a figure without saying where and when it was measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.forecasting.scores import band_ranges  # noqa: E402 - after the path set-up
from benchmarks._results import RESULTS_DIR, ROOT  # noqa: E402 - after the path set-up

log = logging.getLogger("benchmarks.results")
Table = tuple[list[str], list[list[str]]]
COVERAGE_KEYS = ("coverage_80", "coverage_95")


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _num(value: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def forecaster(f: dict[str, Any]) -> Table:
    header = [
        "model",
        "WMAE",
        "naive WMAE",
        "ratio",
        "80% covered",
        "95% covered",
        "train on all rows s",
        "artifact MB",
        "1 row ms",
        "52 weeks ms",
    ]
    rows = []
    for kind, v in f.items():
        if not isinstance(v, dict) or "wmae" not in v:
            continue
        rows.append(
            [
                kind,
                _num(v["wmae"]),
                _num(v["baseline_wmae"]),
                _num(v["wmae"] / v["baseline_wmae"], "{:.3f}"),
                _pct(v["coverage_80"]),
                _pct(v["coverage_95"]),
                _num(v.get("train_all_seconds")),
                _num(v.get("artifact_mb"), "{:.1f}"),
                _num(v.get("one_row_ms"), "{:.2f}"),
                _num(v.get("series_52w_ms"), "{:.2f}"),
            ]
        )
    return header, rows


def origins(f: dict[str, Any]) -> Table:
    header = [
        "origin",
        "WMAE",
        "naive WMAE",
        "ratio",
        "ratio, no Christmas shift",
        "80% covered",
        "95% covered",
        "80% / 95% covered, quarters by volatility and size x horizon buckets (min-max)",
        "interval score 80% / 95%",
        "wQL 0.1 / 0.5 / 0.9",
        "store totals 80% / 95%",
    ]
    rows = []
    for r in f["origins"]:
        off = r.get("christmas_shift_off")
        totals = r.get("store_totals") or {}
        scores = r.get("scores")
        rows.append(
            [
                str(r["origin"])[:10],
                _num(r["wmae"]),
                _num(r["naive_wmae"]),
                f"{r['ratio']:.3f}",
                _num(off["wmae"] / r["naive_wmae"], "{:.3f}") if off else "-",
                _pct(r["coverage_80"]),
                _pct(r["coverage_95"]),
                _quarter_ranges(scores),
                *_proper_scores(scores),
                f"{_pct(totals.get('coverage_80'))} / {_pct(totals.get('coverage_95'))}",
            ]
        )
    return header, rows


def origin_levels(f: dict[str, Any]) -> list[Table]:
    """Totals above a series at each origin: the chain, departments across stores, stores; their
    accuracy beside the naive's totals, coverage, interval scores, and coverage's range over horizon
    buckets and over quarters of the totals' volatility."""
    header = [
        "origin",
        "level",
        "totals",
        "ratio to naive",
        "80% / 95% covered",
        "interval score 80% / 95%",
        "80% / 95% covered, horizon buckets (min-max)",
        "80% / 95% covered, quarters by volatility (min-max)",
    ]
    rows = []
    for r in f.get("origins", []):  # a table carried over from elsewhere has none
        for level, e in (r.get("levels") or {}).items():
            rows.append(
                [
                    str(r["origin"])[:10],
                    level,
                    f"{e['totals']:,}",
                    _num(e.get("ratio_to_baseline"), "{:.3f}"),
                    f"{_pct(e['coverage_80'])} / {_pct(e['coverage_95'])}",
                    " / ".join(_num(e.get(f"interval_score_{lv}"), "{:,.0f}") for lv in (80, 95)),
                    _spans(e.get("by_bucket")),
                    _spans(e.get("by_volatility_quarter")),
                ]
            )
    return [(header, rows)] if rows else []


def _spans(groups: dict[str, Any] | None) -> str:
    """The lowest and highest 80% and 95% coverage over `groups` ("-" without any)."""
    if not groups:
        return "-"
    return _coverage_spans(
        [(min(g[k] for g in groups.values()), max(g[k] for g in groups.values())) for k in COVERAGE_KEYS]
    )


def _coverage_spans(spans: list[tuple[float, float]]) -> str:
    """The 80% and 95% coverage spans, written "lo-hi / lo-hi"."""
    return " / ".join(f"{_pct(lo)}-{_pct(hi)}" for lo, hi in spans)


def _proper_scores(scores: dict[str, Any] | None) -> list[str]:
    """The interval scores of the 80% and 95% ranges, and the weighted quantile losses at 0.1/0.5/0.9."""
    if not scores or scores.get("interval_score_80") is None:
        return ["-", "-"]
    return [
        f"{scores['interval_score_80']:,.0f} / {scores['interval_score_95']:,.0f}",
        " / ".join(f"{scores[f'wql_{q}']:.4f}" for q in (0.1, 0.5, 0.9)),
    ]


def _quarter_ranges(scores: dict[str, Any] | None, bucket: str | None = None) -> str:
    """The lowest and highest 80% and 95% coverage over every quarter of series and its horizon buckets
    (over the quarters' cells of one bucket when given; "-" in a result written before they were
    measured)."""
    if not scores:
        return "-"
    return _coverage_spans([band_ranges(scores, key, bucket) for key in COVERAGE_KEYS])


def peers(f: dict[str, Any]) -> Table:
    header = [
        "origin",
        "model",
        "WMAE",
        "ratio to seasonal naive",
        "80% covered",
        "95% covered",
        "fit + forecast s",
    ]
    rows = []
    for origin, r in f["origins"].items():
        for model, m in r["models"].items():
            if "skipped" in m:
                rows.append([origin, model, m["skipped"], "", "", "", ""])
                continue
            rows.append(
                [
                    origin,
                    model,
                    _num(m["wmae"]),
                    f"{m['ratio']:.3f}",
                    _pct(m.get("coverage_80")),
                    _pct(m.get("coverage_95")),
                    _num(m.get("seconds")),
                ]
            )
    return header, rows


def replay(f: dict[str, Any]) -> Table:
    header = [
        "weeks ahead",
        "live WMAE",
        "seasonal naive",
        "ratio",
        "backtest WMAE",
        "80% covered",
        "95% covered",
        "interval score 80% / 95%",
        "wQL 0.1 / 0.5 / 0.9",
        "quarters of series: 80% / 95% covered",
        "forecasts scored",
    ]
    rows = []
    for bucket, r in f["accuracy_by_lag"].items():
        reference = (f.get("backtest_by_bucket", {}).get(bucket) or {}).get("wmae")
        rows.append(
            [
                bucket,
                _num(r["wmae"]),
                _num(r["naive_wmae"]),
                f"{r['wmae'] / r['naive_wmae']:.3f}",
                _num(reference),
                _pct(r["coverage_80"]),
                _pct(r["coverage_95"]),
                *_proper_scores(r),
                _quarter_ranges(f.get("scores"), bucket),
                f"{r['rows']:,}",
            ]
        )
    return header, rows


def fault_battery(f: dict[str, Any]) -> Table:
    """Per fault: weeks to the first warning and info naming it; then the clean replay's alerts."""
    header = ["fault", "size", "start", "weeks to first warning", "weeks to first info", "named entity"]
    rows = []
    for r in f.get("faults", []):
        named = r.get("weeks_to_warning") is not None or r.get("weeks_to_info") is not None
        what = r["kind"] + (f" ({r['mode']} {r['column']})" if r.get("column") else "")
        where = [", ".join(f"store {s}" for s in r.get("stores") or [])]
        where += [f"dept {r['dept']}"] if r.get("dept") is not None else []
        rows.append(
            [
                " ".join(part for part in (what, *where) if part),
                "-" if not r.get("size") else f"{r['size']:+g}",
                r["start"],
                "never" if r.get("weeks_to_warning") is None else str(r["weeks_to_warning"]),
                "never" if r.get("weeks_to_info") is None else str(r["weeks_to_info"]),
                "yes" if named else "no",
            ]
        )
    clean = f.get("clean")
    if clean:
        levels = ", ".join(f"{n} {level}" for level, n in clean["by_level"].items())
        rows.append(
            [f"clean replay, {clean['weeks']} weeks: alerts opened", "-", f.get("start", "-"), levels, "", ""]
        )
    return header, rows


def scale(f: dict[str, Any]) -> Table:
    header = [
        "stores",
        "series",
        "train s",
        "train peak MB",
        "artifact MB",
        "publish s (x 52 weeks)",
        "worker RSS MB",
        "prediction log, a month MB",
    ]
    sizes = f.get("sizes") or [f]
    rows = [
        [
            str(r.get("stores", "-")),
            _num(r.get("series"), "{:,}"),
            _num(r.get("train_s")),
            _num(r.get("train_peak_mb"), "{:,.0f}"),
            _num(r.get("artifact_mb")),
            _num(r.get("publish_s")),
            _num(r.get("worker_rss_mb"), "{:,.0f}"),
            _num(r.get("log_table_mb"), "{:,.0f}"),
        ]
        for r in sizes
    ]
    return header, rows


def load(f: dict[str, Any]) -> Table:
    header = ["phase", "requests", "requests/s", "predictions/s", "p50 ms", "p99 ms", "5xx"]
    rows = []
    for phase in ("load", "kill_worker", "lock"):
        r = f.get(phase)
        if r:
            rows.append(
                [
                    phase,
                    f"{r['requests']:,}",
                    _num(r.get("throughput_rps")),
                    _num(r.get("predictions_per_s")),
                    _num(r.get("p50_ms")),
                    _num(r.get("p99_ms")),
                    str(r.get("5xx", "-")),
                ]
            )
    checks = f.get("checks") or {}
    rows.append(["checks", f"{sum(checks.values())} of {len(checks)} passed", "", "", "", "", ""])
    return header, rows


HTTP_LABELS = {
    "health": "GET /api/v1/health",
    "predict": "POST /api/v1/predict",
    "forecast52": "POST /api/v1/forecast, 52 weeks",
    "batch1000": "POST /api/v1/predict/batch, 1,000 rows",
    "predict_explain": "POST /api/v1/predict, explained",
    "forecast52_explain": "POST /api/v1/forecast, 52 weeks, explained",
}


def http(f: dict[str, Any]) -> Table:
    header = ["request", "n", "median ms", "p99 ms", "x /health"]
    base = f["latency_ms"]["health"]["median"]
    rows = [
        [
            HTTP_LABELS.get(name, name),
            str(r["n"]),
            f"{r['median']:.2f}",
            f"{r['p99']:.2f}",
            f"{r['median'] / base:.2f}",
        ]
        for name, r in f["latency_ms"].items()
    ]
    base_rate = f["throughput"]["health"]["requests_per_s"]
    for name, t in f["throughput"].items():
        rows.append(
            [
                f"{HTTP_LABELS.get(name, name)}, wrk throughput",
                f"{t['requests_per_s']:,.0f} req/s",
                f"{t['median_ms']:.2f}",
                f"{t['p99_ms']:.2f}",
                f"{t['requests_per_s'] / base_rate:.2f}",
            ]
        )
    return header, rows


def http_phases(f: dict[str, Any]) -> list[Table]:
    """Where a request's time goes: one column per request, one row per phase (bench_http's phases)."""
    found = f.get("phases") or {}
    if not found:
        return []
    keys = list(found)
    header = ["phase (median ms per request)"] + [
        f"{HTTP_LABELS.get(key, key)} (HTTP median {found[key]['http_median_ms']:.2f})" for key in keys
    ]
    names = list(dict.fromkeys(name for key in keys for name in found[key]["phases_ms"]))
    rows = []
    for name in names:
        cells = []
        for key in keys:
            ms = found[key]["phases_ms"].get(name)
            share = "" if ms is None else f" ({ms / found[key]['http_median_ms']:.0%})"
            cells.append("-" if ms is None else f"{ms:.3f}{share}")
        rows.append([name, *cells])
    return [(header, rows)]


def profile(f: dict[str, Any]) -> Table:
    header = ["phase", "py-spy samples", "share of the worker's CPU"]
    total = sum(f["phases"].values()) or 1
    rows = [[name, f"{count:,}", _pct(count / total)] for name, count in f["phases"].items()]
    rate = f.get("throughput") or {}
    if rate:
        rows.append(["(wrk while sampled)", f"{rate['requests_per_s']:,.0f} req/s", "-"])
    return header, rows


def hostile(f: dict[str, Any]) -> Table:
    header = ["input", "status", "bytes", "median s", "worker peak + MB"]
    rows = [
        [r["input"], str(r["status"]), f"{r['bytes']:,}", f"{r['s']:.3f}", f"{r['mb']:.1f}"]
        for r in f["inputs"]
    ]
    return header, rows


def worker_start(f: dict[str, Any]) -> Table:
    header = ["workers import", "seconds to the first answer (median)", "web packages on a worker"]
    rows = [
        [name, str(r["median_s"]), ", ".join(r["web_packages"]) or "none"]
        for name, r in f["variants"].items()
    ]
    return header, rows


def image(f: dict[str, Any]) -> Table:
    header = ["figure", "value", "load average (1 min) at start, end"]
    steps = (
        ("build_cold", "make image, cold s"),
        ("build_warm", "make image, warm s"),
        ("check", "make image-check s"),
    )
    rows = [
        [label, _num(f[key]["seconds"]), f"{f[key]['load_start'][0]:.2f}, {f[key]['load_end'][0]:.2f}"]
        for key, label in steps
        if f.get(key)
    ]
    names = {"image": "storecast", "base": "Debian Python base"}
    sizes = (f.get("size_mb") or {}).items()
    rows += [[f"{names.get(name, name)} image MB", _num(size), "-"] for name, size in sizes]
    return header, rows


def download_memory(f: dict[str, Any]) -> Table:
    header = ["run", "rows", "CSV MB", "seconds", "worker growth at peak, MB", "after, MB"]
    rows = [
        [name, f"{r['rows']:,}", f"{r['csv_mb']:.1f}", f"{r['seconds']:.1f}", f"{r['growth_peak_mb']:.1f}",
         f"{r['growth_after_mb']:.1f}"]
        for name, r in f["runs"].items()
    ]  # fmt: skip
    return header, rows


def flat(f: dict[str, Any], prefix: str = "") -> Table:
    """Any other figures: one row per scalar, nested keys joined by dots."""
    rows: list[list[str]] = []
    for key, value in f.items():
        if key == "run":
            continue
        if isinstance(value, dict):
            rows += flat(value, f"{prefix}{key}.")[1]
        elif not isinstance(value, list):
            rows.append([f"{prefix}{key}", str(value)])
    return ["figure", "value"], rows


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    command: str
    table: Callable[[dict[str, Any]], Table]
    more: Callable[[dict[str, Any]], list[Table]] | None = None  # further tables under the first


BENCHMARKS = (
    Benchmark(
        "bench_origins",
        "Accuracy and interval coverage at three origins",
        "bench_origins.py --data DIR",
        origins,
        origin_levels,
    ),
    Benchmark(
        "bench_peers", "Against the peers a user would pick instead", "bench_peers.py --data DIR", peers
    ),
    Benchmark(
        "bench_forecaster",
        "Accuracy, training time, size and in-process latency",
        "bench_forecaster.py --data DIR",
        forecaster,
    ),
    Benchmark("bench_replay", "The weekly loop replayed over 39 weeks", "bench_replay.py --data DIR", replay),
    Benchmark(
        "bench_faults",
        "Faults injected into the replayed loop: weeks until each is named",
        "bench_faults.py --data DIR",
        fault_battery,
    ),
    Benchmark("bench_http", "API latency and throughput under gunicorn", "bench_http.py", http, http_phases),
    Benchmark(
        "profile_http",
        "A worker's CPU by phase under POST /predict (py-spy)",
        "profile_http.py --seconds 8",
        profile,
    ),
    Benchmark("load", "Mixed load and faults under gunicorn", "load.py --seconds 60 --all", load),
    Benchmark("bench_hostile", "Hostile requests", "bench_hostile.py", hostile),
    Benchmark(
        "bench_download_memory",
        "A worker's memory while it streams a forecast run's CSV",
        "bench_download_memory.py",
        download_memory,
    ),
    Benchmark("bench_monitoring", "Prediction logging and the monitoring jobs", "bench_monitoring.py", flat),
    Benchmark("bench_scale", "Chain scale", "bench_scale.py", scale),
    Benchmark("bench_worker_start", "Dask worker start", "bench_worker_start.py", worker_start),
    Benchmark("image", "The container image: size, build and release check", "bench_image.py --cold", image),
)


def markdown(table: Table) -> list[str]:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def provenance(run: dict[str, Any], path: Path) -> str:
    """One line: commit, date, load average and where the figures come from."""
    load = run.get("load_average") or {}
    start, end = load.get("start") or [], load.get("end") or []
    average = f"{start[0]:.2f} at start, {end[0]:.2f} at end" if start and end else "not recorded"
    line = (
        f"Commit `{run.get('commit', 'unknown')}`, {run.get('date', 'undated')}, "
        f"load average (1 min) {average}, {run.get('cpus', '?')} cores"
    )
    if run.get("argv"):
        line += f"; arguments `{' '.join(run['argv'])}`"
    if run.get("carried_over"):
        line += f". Carried over from the README ({run['carried_over']}), not re-measured"
    return line + f". Source: `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}`."


def read(directory: Path) -> dict[str, list[tuple[Path, dict[str, Any]]]]:
    """Every results file by benchmark, newest first; files without provenance are skipped with a warning."""
    found: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path in sorted(directory.glob("*.json")):
        figures = json.loads(path.read_text())
        run = figures.get("run") if isinstance(figures, dict) else None
        if not run or "benchmark" not in run:
            log.warning('%s: no provenance ("run"), skipped', path)
            continue
        found.setdefault(run["benchmark"], []).append((path, figures))
    for files in found.values():
        files.sort(key=lambda item: item[1]["run"].get("date", ""), reverse=True)
    return found


def render(directory: Path) -> str:
    found = read(directory)
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks.results` from the JSON files in `benchmarks/results/`; do not edit",
        "by hand. A benchmark writes its file with `--json benchmarks/results/<benchmark>.json`. Every table",
        "says the commit, the date and the load average it was measured at: on a shared machine the load",
        "moves every timing, and accuracy figures hold only for the commit named.",
        "",
    ]
    for bench in BENCHMARKS:
        lines += [f"## {bench.title}", "", f"`benchmarks/{bench.command}`", ""]
        files = found.pop(bench.name, [])
        if not files:
            lines += ["Not yet measured.", ""]
        for path, figures in files:
            lines += [provenance(figures["run"], path), ""]
            table = (figures["table"]["header"], figures["table"]["rows"]) if "table" in figures else None
            lines += markdown(table or bench.table(figures)) + [""]
            for more in bench.more(figures) if bench.more else []:
                lines += markdown(more) + [""]
            if figures.get("notes"):
                lines += [figures["notes"], ""]
    for name in sorted(found):
        log.warning("results of an unknown benchmark %r left out", name)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.write_text(render(args.dir))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
