"""Fault battery: how fast the weekly loop names each kind of fault, and how often it cries wolf.

    .venv/bin/python benchmarks/bench_faults.py [--data DIR] [--start 2012-01-27] [--weeks 39]
        [--fault-start 2012-03-02] [--artifact PATH.joblib] [--json benchmarks/results/bench_faults.json]
        [--groups 0,2] [--skip-clean]

Trains once on sales up to --start (or reuses --artifact, a model trained so), then replays the loop
from a fresh database each time with that same artifact: once clean over --weeks weeks (the alerts at
each level), then the battery in two replays of the weeks the faults need. Faults at different stores
do not interact, so the store-level ones share one replay; the chain-wide ones (a department in every
store, weeks of actuals missing, counted twice or sent again) share another, spaced two weeks apart; a
third shifts a fifth of the sales of the stores that swing most from year to year or whose forecasts
miss most (a store's shift is judged against the other stores', so the few shifted stores are split
between falls and rises). --groups replays only the groups named (0-based), to measure one kind alone.
Per fault: weeks until the first warning naming it (1: the week it arrived) and the first info.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.factory import create_app  # noqa: E402
from app.forecasting.artifacts import read_metadata, sha256_file  # noqa: E402
from app.forecasting.synthetic import load_or_generate  # noqa: E402
from app.forecasting.training import save_model, train  # noqa: E402
from app.loop import faults  # noqa: E402
from app.loop.replay import ReplaySettings, replay  # noqa: E402
from app.loop.weekly import LoopSettings  # noqa: E402
from benchmarks._results import load_average, write_json  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "walmart"
log = logging.getLogger("bench_faults")


def battery(start: dt.date) -> list[list[str]]:
    """The faults, in groups replayed together: store-level faults at distinct stores, then the
    chain-wide ones two weeks apart."""
    at = [(start + dt.timedelta(weeks=2 * k)).isoformat() for k in range(4)]
    return [
        [
            f"store_level:store=20,size=-0.5,start={at[0]}",
            f"store_level:store=4,size=-0.2,start={at[0]}",
            f"store_level:store=13,size=0.3,start={at[0]}",
            f"dept_collapse:store=2,dept=92,start={at[0]}",
            f"dept_collapse:store=6,dept=5,start={at[0]}",
            f"spike:store=28,size=0.5,start={at[0]}",
            f"covariate:stores=30+31+32,column=temperature,mode=offset,size=-40,start={at[0]}",
            f"covariate:stores=33+34,column=cpi,mode=stuck,start={at[0]}",
            f"covariate:stores=35+36,column=fuel_price,mode=missing,start={at[0]}",
        ],
        [
            f"dept_shift:dept=92,size=-0.3,start={at[0]}",
            f"actuals_missing:start={at[1]}",
            f"actuals_doubled:start={at[2]}",
            f"actuals_repeated:start={at[3]}",
        ],
        [
            f"store_level:store=14,size=-0.2,start={at[0]}",
            f"store_level:store=20,size=-0.2,start={at[0]}",
            f"store_level:store=23,size=-0.2,start={at[0]}",
            f"store_level:store=35,size=-0.2,start={at[0]}",
            f"store_level:store=7,size=-0.2,start={at[0]}",
            f"store_level:store=18,size=0.2,start={at[0]}",
            f"store_level:store=27,size=0.2,start={at[0]}",
            f"store_level:store=29,size=0.3,start={at[0]}",
        ],
    ]


class Artifact:
    """What replay() needs of a saved model: its path, hash and metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = sha256_file(path)
        self.metadata = read_metadata(path)


def run_replay(work: Path, name: str, dataset: Any, settings: ReplaySettings) -> dict[str, Any]:
    folder = work / name
    folder.mkdir()
    database = f"sqlite:///{folder / 'replay.db'}"
    app = create_app({"DATABASE_URL": database, "MODELS_DIR": str(folder / "models"),
                      "SECRET_KEY": "bench", "TESTING": True})  # fmt: skip
    storage = app.extensions["storage"]
    storage.create_all()
    began = time.perf_counter()
    result = replay(storage, dataset, settings, model_name="storecast", models_dir=folder / "models",
                    progress=lambda m: print(f"  … [{name}] {m}", file=sys.stderr))  # fmt: skip
    storage.dispose()
    log.info("%s replay: %.0f s", name, time.perf_counter() - began)
    return result


def _cell(value: int | None) -> str:
    return "never" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--start", default="2012-01-27")
    parser.add_argument("--weeks", type=int, default=39)
    parser.add_argument("--fault-start", default="2012-03-02")
    parser.add_argument("--fault-weeks", type=int, default=12, help="weeks replayed for the battery")
    parser.add_argument("--artifact", default=None, help="a model trained on sales up to --start")
    parser.add_argument("--skip-clean", action="store_true")
    parser.add_argument("--groups", default=None, help="battery groups to replay, e.g. 0,2 (default: all)")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bench_faults").setLevel(logging.INFO)
    logging.getLogger("app.monitoring.alerts").setLevel(logging.ERROR)

    load_start = load_average()
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    dataset = load_or_generate(args.data)
    start = pd.Timestamp(args.start)
    if args.artifact:
        artifact: Any = Artifact(Path(args.artifact))
        trained_seconds = None
    else:
        t0 = time.perf_counter()
        trained = train(dataset, kind="hgb", through=start)
        artifact = save_model(trained, str(work / "models"))
        trained_seconds = round(time.perf_counter() - t0, 1)
    loop = LoopSettings()
    out: dict[str, Any] = {
        "data": dataset.source,
        "start": start.date().isoformat(),
        "train_seconds": trained_seconds,
    }
    rows, replays = [], []
    groups = {int(g) for g in args.groups.split(",")} if args.groups else None
    for k, group in enumerate(battery(pd.Timestamp(args.fault_start).date())):
        if groups is not None and k not in groups:
            continue
        injected = tuple(faults.parse_faults(group))
        problems = [p for p in (faults.unknown_entity(f, dataset) for f in injected) if p]
        if problems:
            raise SystemExit(f"battery {k}: {problems}")
        settings = ReplaySettings(
            start=start.date(), weeks=args.fault_weeks, artifact=artifact, loop=loop, faults=injected
        )
        result = run_replay(work, f"battery-{k}", dataset, settings)
        replays.append({"faults": group, "clean_weeks": result["clean_alerts"], "seconds": result["seconds"]})
        for found in result["faults"]:
            rows.append({**found, "replay": k})
        if args.json_out:  # kept after each replay: a long battery's figures survive an interruption
            write_json(args.json_out, "bench_faults", {**out, "faults": rows, "replays": replays}, load_start)
    if not args.skip_clean:
        clean = run_replay(work, "clean", dataset, ReplaySettings(start=start.date(), weeks=args.weeks,
                                                                  artifact=artifact, loop=loop))  # fmt: skip
        opened = [a for w in clean["weeks"] for a in w["alerts_opened"]]
        out["clean"] = {
            "weeks": args.weeks,
            "by_level": clean["clean_alerts"]["by_level"],
            "by_kind": clean["clean_alerts"]["by_kind"],
            "warnings": [
                {"week": w["week"], "kind": a["kind"], "message": a["message"]}
                for w in clean["weeks"]
                for a in w["alerts_opened"]
                if a["severity"] != "info"
            ],  # fmt: skip
            "alerts_opened": len(opened),
            "lag1": clean["accuracy_by_lag"].get("1"),
            "seconds": clean["seconds"],
        }
        print(f"clean replay, {args.weeks} weeks: {clean['clean_alerts']['by_level']} opened")
        for warning in out["clean"]["warnings"]:
            print(f"  clean warning {warning['week']} {warning['kind']}: {warning['message']}")
    out["faults"] = rows
    out["replays"] = replays
    out["seconds"] = round(time.perf_counter() - began, 1)
    print(f"\n{'fault':<70} {'warning':>8} {'info':>6}  named")
    for row in rows:
        named = "yes" if row["weeks_to_warning"] or row["weeks_to_info"] else "no"
        print(
            f"{row['spec']:<70} {_cell(row['weeks_to_warning']):>8} {_cell(row['weeks_to_info']):>6}  {named}"
        )
    print(f"whole battery {out['seconds']:.0f} s; load average before {load_start}, after {load_average()}")
    if args.json_out:
        write_json(args.json_out, "bench_faults", out, load_start)


if __name__ == "__main__":
    main()
