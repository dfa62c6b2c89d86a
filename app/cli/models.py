"""`flask runs`, `flask models` and `flask experiment`: thin wrappers over the registry functions."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import extensions
from app.cli.data import (
    DATA_HELP,
    DataRefused,
    load_dataset,
    parse_date,
    require_deployment_data,
)
from app.cli.db import SchemaGroup, requires_schema
from app.config import train_params
from app.forecasting.data import DataError
from app.forecasting.estimators import KINDS
from app.forecasting.synthetic import load_or_generate
from app.forecasting.training import limit_training_threads
from app.registry import data_source, lineage, promotion, versions
from app.registry.actual_history import dataset_with_actuals
from app.registry.experiment import run_experiment
from app.registry.training_runs import get_training_run, list_training_runs

runs_cli = SchemaGroup("runs", help="Training, backtest and experiment runs.")
models_cli = SchemaGroup("models", help="Registered model versions and their stages.")


def _name() -> str:
    return current_app.config["MODEL_NAME"]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


@runs_cli.command("list")
@click.option(
    "--limit",
    default=30,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many of the newest runs (1-1000).",
)
@click.option("--type", "run_type", type=click.Choice(["train", "backtest", "experiment"]), default=None)
def runs_list(limit: int, run_type: str | None) -> None:
    """The newest runs: type, model, status, data window, WMAE, duration."""
    rows = list_training_runs(extensions.storage(), limit=limit, run_type=run_type)
    if not rows:
        click.echo("no runs yet: `flask train`, `flask backtest` or `flask experiment` records one")
        return
    header = (
        f"{'id':>4}  {'type':<10} {'model':<7} {'status':<8} {'started':<19}  "
        f"{'data':<23} {'WMAE':>11} {'secs':>7}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    for run in rows:
        window = f"{run['data_start'] or '?'}..{run['data_end'] or '?'}" if run["data_start"] else "-"
        click.echo(
            f"{run['id']:>4}  {run['run_type']:<10} {run['model_kind']:<7} {run['status']:<8} "
            f"{(run['started_at'] or '').replace('T', ' '):<19}  {window:<23} "
            f"{_fmt(run['metrics'].get('wmae')):>11} {_fmt(run['duration_s']):>7}"
        )


@runs_cli.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the whole run as JSON.")
def runs_show(run_id: int, as_json: bool) -> None:
    """Everything recorded about one run."""
    run = get_training_run(extensions.storage(), run_id)
    if run is None:
        raise click.ClickException(f"run {run_id} does not exist")
    if as_json:
        click.echo(json.dumps(run, indent=2, default=str))
        return
    metrics = run["metrics"]
    for label, value in (
        ("run", run["id"]),
        ("type", run["run_type"]),
        ("model", run["model_kind"]),
        ("status", run["status"]),
        ("error", run["error"]),
        ("started", run["started_at"]),
        ("finished", run["finished_at"]),
        ("duration (s)", _fmt(run["duration_s"], 2)),
        ("code version", run["code_version"]),
        ("data", run["data_source"]),
        ("data window", f"{run['data_start']} .. {run['data_end']}"),
        ("fingerprint", run["data_fingerprint"]),
        ("artifact", run["artifact_path"]),
        ("sha256", run["artifact_sha256"]),
        ("params", json.dumps(run["params"], default=str)),
    ):
        if value is not None:
            click.echo(f"{label:<14} {value}")
    scalar = {key: value for key, value in metrics.items() if not isinstance(value, (dict, list))}
    if scalar:
        click.echo("metrics")
        for key, value in scalar.items():
            click.echo(f"  {key:<16} {_fmt(value, 3)}")
    buckets = metrics.get("by_bucket") or {}
    if buckets:
        click.echo("WMAE by horizon (weeks ahead)")
        for bucket, figures in buckets.items():
            wmae = figures.get("wmae") if isinstance(figures, dict) else figures
            click.echo(f"  {bucket:<8} {_fmt(wmae)}")


def _print_versions() -> None:
    rows = versions.list_versions(extensions.storage(), _name())
    if not rows:
        click.echo("no versions registered yet: `flask train` registers the first as production")
        return
    header = f"{'version':<8} {'stage':<11} {'model':<7} {'run':>4} {'WMAE':>11} {'created':<19}  sha256"
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        click.echo(
            f"{row['label']:<8} {row['stage']:<11} {row['model_kind']:<7} {row['run_id'] or '-':>4} "
            f"{_fmt(row['wmae']):>11} {(row['created_at'] or '').replace('T', ' '):<19}  "
            f"{row['artifact_sha256'][:12]}"
        )


@models_cli.command("list")
@click.option("--history", is_flag=True, help="Also print the stage history, newest first.")
def models_list(history: bool) -> None:
    """Versions with their stage, newest first."""
    _print_versions()
    if history:
        click.echo("")
        for change in versions.stage_history(extensions.storage(), _name()):
            click.echo(
                f"{change['changed_at'].replace('T', ' ')}  {change['label']:<5} "
                f"{change['from_stage'] or 'new':>10} -> {change['to_stage']:<10} by {change['changed_by']}"
                + (f": {change['reason']}" if change["reason"] else "")
            )


def _actor_options(function):
    function = click.option("--reason", default="", help="Why: kept in the stage history.")(function)
    return click.option("--by", default=None, help="Who: defaults to the OS user running the command.")(
        function
    )


def _run_action(action, *args, by: str | None, reason: str, **options: Any) -> dict[str, Any]:
    try:
        options = {"by": by or versions.default_actor(), "reason": reason, **options}
        return action(extensions.storage(), _name(), *args, **options)
    except versions.WorseThanProduction:
        raise  # the command says what to do about it
    except versions.RegistryError as error:
        raise click.ClickException(str(error)) from error


@models_cli.command("production")
def models_production() -> None:
    """Print the production version; exit 1 when there is none (scripts use it)."""
    production = versions.production_version(extensions.storage(), _name())
    if production is None:
        raise click.ClickException("no production version yet")
    click.echo(f"v{production['version']} {production['model_kind']} {production['artifact_path']}")


NO_PRODUCTION_EXIT = 3


@models_cli.command("check-data")
@click.option(
    "--data",
    "data_dir",
    default=None,
    help=DATA_HELP,
)
def models_check_data(data_dir: str | None) -> None:
    """Say whether production is a model of the deployment's data; the first call records the data.

    Exit 3 when there is no production model yet (`make run` then trains one), exit 4 when the data
    given is not the deployment's (nothing is trained: the message names the command that switches).
    """
    dataset = load_dataset(data_dir)
    recorded = require_deployment_data(dataset, data_dir)
    check = lineage.check_data(extensions.storage(), _name(), dataset.lineage(), dataset.source)
    if check["status"] == "different":
        raise DataRefused(
            f"{check['message']}: nothing was trained. "
            f"`{recorded.switch_command()}` trains a model of the deployment's data and makes it production"
        )
    click.echo(check["message"])
    if check["status"] == "no-production":
        raise SystemExit(NO_PRODUCTION_EXIT)


@models_cli.command("switch-data")
@click.option("--data", "data_dir", default=None, help="directory with the Kaggle CSVs to forecast from")
@click.option("--synthetic", is_flag=True, help="forecast from the embedded synthetic dataset")
@click.option("--model", "kind", type=click.Choice(KINDS), default="hgb", show_default=True)
@click.option("--by", default=None, help="Who: defaults to the OS user running the command.")
def models_switch_data(data_dir: str | None, synthetic: bool, kind: str, by: str | None) -> None:
    """Make other data the deployment's: train a model of it, make it production, archive the others.

    The archived versions' history says who switched, when, and from which data to which.
    """
    if bool(data_dir) == synthetic:
        raise click.ClickException("give the new data: --data DIR or --synthetic (one of them)")
    try:
        dataset = load_or_generate(data_dir)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    given = data_source.Source.of(dataset, data_dir)
    click.echo(f"training {kind} on {given.describe()}")
    try:
        with limit_training_threads(int(current_app.config.get("TRAIN_THREADS") or 0)):
            result = data_source.switch(
                extensions.storage(),
                _name(),
                dataset,
                given,
                instance_file=current_app.config.get("DATA_SOURCE_FILE"),
                models_dir=current_app.config["MODELS_DIR"],
                kind=kind,
                params=train_params(current_app.config),
                by=by or versions.default_actor(),
            )
    except versions.RegistryError as error:
        raise click.ClickException(str(error)) from None
    if result["version"] is None:
        click.echo(f"recorded {given.describe()}: {result['reason']}; no version changed")
        return
    click.echo(
        f"this deployment now forecasts from {given.describe()}: {result['version']['label']} is in "
        f"production; the other versions are archived ({result['reason']})"
    )


@models_cli.command("promote")
@click.argument("version")
@click.option("--force", is_flag=True, help="Promote even when it scores worse than production.")
@_actor_options
def models_promote(version: str, force: bool, by: str | None, reason: str) -> None:
    """Make VERSION (3 or v3) production; the current production version is archived.

    VERSION and production are scored on the same weeks (held out from both, relative to the seasonal
    naive); a version that scores worse is refused (saying by how much, on which weeks) without --force.
    """
    try:
        row = _run_action(
            promotion.promote,
            version,
            current_app.config.get("DATA_SOURCE_FILE"),
            by=by,
            reason=reason,
            force=force,
        )
    except versions.WorseThanProduction as worse:
        message = worse.comparison["message"]
        raise click.ClickException(f"{message}: add --force to promote it anyway") from None
    if row["comparison"] is not None:
        click.echo(row["comparison"]["message"])
    click.echo(
        f"{row['label']} is now in production; "
        f"workers switch within {current_app.config['MODEL_REFRESH_SECONDS']}s"
    )


@models_cli.command("rollback")
@_actor_options
def models_rollback(by: str | None, reason: str) -> None:
    """Put back the version that was production before the current one."""
    row = _run_action(versions.rollback, by=by, reason=reason)
    click.echo(f"rolled back: {row['label']} is in production again")


@models_cli.command("archive")
@click.argument("version")
@_actor_options
def models_archive(version: str, by: str | None, reason: str) -> None:
    """Retire a staging VERSION (production cannot be archived)."""
    row = _run_action(versions.archive, version, by=by, reason=reason)
    click.echo(f"{row['label']} archived")


@click.command("experiment")
@with_appcontext
@click.option(
    "--data",
    "data_dir",
    default=None,
    help=DATA_HELP,
)
@click.option(
    "--models",
    "models",
    default="hgb,rf,linear,naive",
    show_default=True,
    help="Comma-separated kinds: hgb (gradient boosting, the default model), rf (a random forest), linear "
    "(ridge), naive (last year's same week); each trains in minutes on two cores.",
)
@click.option(
    "--folds", default=3, show_default=True, type=click.IntRange(1, 20), help="Rolling-origin folds."
)
@click.option(
    "--origin", default=None, help="Last week of history of the first fold (YYYY-MM-DD); default: the core's."
)
@click.option(
    "--horizon", default=None, type=click.IntRange(1, 52), help="Weeks ahead per fold; default: the core's."
)
@click.option(
    "--margin", default=None, type=float, help="Relative WMAE margin to promote (default PROMOTION_MARGIN)."
)
@click.option("--with-actuals", is_flag=True, help="Add the actual sales ingested since to the data.")
@click.option("--by", default=None, help="Who: defaults to the OS user running the command.")
@requires_schema
def experiment_command(
    data_dir: str | None,
    models: str,
    folds: int,
    origin: str | None,
    horizon: int | None,
    margin: float | None,
    with_actuals: bool,
    by: str | None,
) -> None:
    """Backtest every model the same way, register the best as staging, promote it if it beats production."""
    kinds = [kind.strip() for kind in models.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise click.ClickException(
            f"unknown model kind(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KINDS)}"
        )
    parse_date(origin, "--origin")
    app = current_app
    dataset = load_dataset(data_dir)
    require_deployment_data(dataset, data_dir)
    if with_actuals:
        dataset = dataset_with_actuals(dataset, extensions.storage())
    click.echo(f"data: {dataset.source} ({len(dataset.sales):,} rows through {dataset.last_week.date()})")
    try:
        result = run_experiment(
            extensions.storage(),
            dataset,
            model_name=_name(),
            models_dir=app.config["MODELS_DIR"],
            kinds=kinds,
            folds=folds,
            origin=origin,
            horizon=horizon,
            margin=float(app.config["PROMOTION_MARGIN"] if margin is None else margin),
            by=by or versions.default_actor(),
            progress=lambda message: click.echo(message, err=True),
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo("")
    click.echo(result.format_table())
    if all(candidate.error for candidate in result.candidates):
        raise click.ClickException("every model failed its backtest: nothing was registered")


def register_cli(app: Flask) -> None:
    app.cli.add_command(runs_cli)
    app.cli.add_command(models_cli)
    app.cli.add_command(experiment_command)
