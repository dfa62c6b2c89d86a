"""The weekly loop's commands: `flask forecast publish [--out FILE.csv]` and `flask replay`.

Thin wrappers over app.loop: publish rolls the production model to the newest actuals and stores a
forecast run; replay drives the whole loop over past weeks of a dataset on its own database.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click
import pandas as pd
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import extensions
from app.cli.data import load_dataset, require_deployment_data
from app.cli.db import SchemaGroup, requires_schema
from app.cli.files import OutputFile, written_atomically
from app.config import train_params
from app.forecasting.engine import ENGINES, Engine
from app.forecasting.scores import band_ranges
from app.loop import faults, history, publish, weekly
from app.loop.replay import ReplaySettings, replay, write_forecasts

forecast_cli = SchemaGroup("forecast", help="Published forecast runs (the plan of record).")


@forecast_cli.command("publish")
@click.option(
    "--out",
    type=OutputFile(path_type=Path),
    default=None,
    help="also write the rows as CSV (written to a temporary file, then renamed into place)",
)
@click.option(
    "--engine",
    "engine_kind",
    type=click.Choice(ENGINES),
    default=None,
    help="local: this process; dask: an embedded LocalCluster, or DASK_SCHEDULER_ADDRESS "
    "(default: FORECAST_ENGINE, else local)",
)
@click.option(
    "--force",
    is_flag=True,
    help="replace the run production already published from this week (default: keep it)",
)
def publish_command(out: Path | None, engine_kind: str | None, force: bool) -> None:
    """Publish a run now: 52 weeks for every series from the newest week of known sales, then score.

    One run per week and model version: when production already published this week, its run is kept
    and reused (--force replaces it).
    """
    app = current_app
    storage = extensions.storage()
    try:
        forecaster, source = history.rolled_production(storage, app.config["MODEL_NAME"])
    except LookupError:
        raise click.ClickException("no production model: run `flask --app wsgi train` first") from None
    engine = Engine.from_config(app.config, kind=engine_kind)
    run = publish.publish(storage, forecaster, engine=engine, source=source, force=force)
    turn = weekly.run_week(storage, forecaster, weekly.LoopSettings.from_config(app.config))
    if run.outcome == publish.EXISTING:
        click.echo(
            f"forecast run {run.id} already holds the week from {run.data_through} for {run.model_version} "
            f"({run.rows:,} rows): kept it, nothing new stored (--force replaces it); "
            f"weeks scored: {len(turn['weeks_scored'])}"
        )
    else:
        replaced = " (replacing the week's previous run)" if run.outcome == publish.REPLACED else ""
        click.echo(
            f"forecast run {run.id}{replaced}: {run.rows:,} rows for {run.series:,} series from "
            f"{run.data_through} ({run.model_version}) in {run.seconds:.1f}s on {engine.kind}; "
            f"weeks scored: {len(turn['weeks_scored'])}"
        )
    if out is not None:
        with written_atomically(out) as handle:
            count = publish.write_csv(storage, run.id, handle)
        click.echo(f"wrote {out} ({count:,} rows)")


def _progress(message: str) -> None:
    click.echo(f"  … {message}", err=True)


@click.command("replay")
@click.option(
    "--data", default=None, help="directory with the Kaggle CSVs (default: $STORECAST_DATA, else synthetic)"
)
@click.option("--start", required=True, help="last week of sales the first model knows (YYYY-MM-DD)")
@click.option("--weeks", type=click.IntRange(1, 156), default=39, show_default=True)
@click.option(
    "--retrain-every",
    type=click.IntRange(1, 156),
    default=None,
    help="retrain through the gate every K weeks",
)
@click.option("--json", "json_out", type=OutputFile(path_type=Path), default=None)
@click.option("--forecasts", type=OutputFile(path_type=Path), default=None)
@click.option(
    "--inject",
    "specs",
    multiple=True,
    metavar="SPEC",
    help="a fault fed to the loop, e.g. store_level:store=20,size=-0.5,start=2012-05-04 (repeatable; "
    "kinds: " + ", ".join(faults.KINDS) + ")",
)
@with_appcontext
@requires_schema
def replay_command(
    data: str | None,
    start: str,
    weeks: int,
    retrain_every: int | None,
    json_out: Path | None,
    forecasts: Path | None,
    specs: tuple[str, ...],
) -> None:
    """Replay the weekly loop over the weeks after --start on this database (use an empty one).

    With --inject, the weeks fed to the loop carry the faults (in memory; the files are not touched) and
    the replay reports, per fault, the weeks until the first alert naming what broke.
    """
    app: Flask = current_app
    storage = extensions.storage()
    dataset = load_dataset(data)
    require_deployment_data(dataset, data)
    try:
        start_week = pd.Timestamp(start)
    except ValueError:
        raise click.ClickException(f"--start: {start!r} is not a date (YYYY-MM-DD)") from None
    if not dataset.sales["date"].min() < start_week < dataset.sales["date"].max():
        raise click.ClickException(f"--start {start} must fall inside the data's sales weeks")
    injected = []
    last_week = (start_week + pd.Timedelta(weeks=weeks)).date()
    for spec in specs:
        try:
            fault = faults.parse_fault(spec)
        except faults.FaultSpecError as error:
            raise click.BadParameter(f"{spec!r}: {error}", param_hint="--inject") from None
        if not start_week.date() < fault.start <= last_week:
            raise click.BadParameter(
                f"{spec!r}: start {fault.start} must fall within the replayed weeks "
                f"({(start_week + pd.Timedelta(weeks=1)).date()}..{last_week})",
                param_hint="--inject",
            )
        problem = faults.unknown_entity(fault, dataset)
        if problem:
            raise click.BadParameter(f"{spec!r}: {problem}", param_hint="--inject")
        injected.append(fault)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = ReplaySettings(
        start=start_week.date(),
        weeks=weeks,
        retrain_every=retrain_every,
        params=train_params(app.config),
        margin=float(app.config["PROMOTION_MARGIN"]),
        loop=weekly.LoopSettings.from_config(app.config),
        faults=tuple(injected),
    )
    result = replay(
        storage,
        dataset,
        settings,
        model_name=app.config["MODEL_NAME"],
        models_dir=app.config["MODELS_DIR"],
        progress=_progress,
    )
    for bucket, figures in result["accuracy_by_lag"].items():
        reference = (result["backtest_by_bucket"].get(bucket) or {}).get("wmae")
        click.echo(
            f"lag {bucket:>5}: WMAE {figures['wmae']:>9,.1f}  naive {figures['naive_wmae']:>9,.1f}  "
            f"ratio {figures['wmae'] / figures['naive_wmae']:.3f}  "
            f"backtest {reference or float('nan'):>9,.1f}  "
            f"80% {figures['coverage_80']:.1%}  95% {figures['coverage_95']:.1%}  "
            "IS 80/95 "
            + "/".join(_score(figures.get(f"interval_score_{level}")) for level in (80, 95))
            + "  wQL .1/.5/.9 "
            + "/".join(_score(figures.get(f"wql_{q}"), ".3f") for q in ("0.1", "0.5", "0.9"))
            + "  quarters of series 80%/95% "
            + "/".join(
                "{:.0%}-{:.0%}".format(*band_ranges(result["scores"], key, bucket))
                for key in ("coverage_80", "coverage_95")
            )
            + f"  rows {figures['rows']:,}"
        )
    for found in result["faults"]:
        click.echo(
            f"fault {found['spec']}: first warning naming it after {_weeks(found['weeks_to_warning'])}, "
            f"first info after {_weeks(found['weeks_to_info'])}"
        )
    clean = result["clean_alerts"]
    click.echo(
        f"{clean['weeks']} week(s) before any fault: "
        + ", ".join(f"{n} {level}" for level, n in clean["by_level"].items())
        + " alert(s) opened"
    )
    click.echo(
        f"{result['alerts_opened']} alert(s) opened; {len(result['retrains'])} retrain(s); "
        f"{result['seconds']:.0f}s"
    )
    if forecasts is not None:
        began = time.perf_counter()
        with written_atomically(forecasts) as handle:
            count = write_forecasts(storage, handle)
        click.echo(f"wrote {forecasts} ({count:,} forecasts, {time.perf_counter() - began:.0f}s)")
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2, default=str))
        click.echo(f"wrote {json_out}")


def _score(value: float | None, spec: str = ",.0f") -> str:
    """A proper score for the replay's report ("-" where no row carried it)."""
    return "-" if value is None else format(value, spec)


def _weeks(count: int | None) -> str:
    return "never" if count is None else f"{count} week(s)"


def register_cli(app: Flask) -> None:
    app.cli.add_command(forecast_cli)
    app.cli.add_command(replay_command)
