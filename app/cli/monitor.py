"""The monitoring commands: `flask monitor run`, `flask scheduler`, `flask actuals import[-features] FILE`,
`flask actuals corrections`.

Thin wrappers: the work is in jobs.tasks.run_all, jobs.scheduler.make_scheduler and actuals.import_csv.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import signal
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import extensions
from app.cli.db import SchemaGroup, requires_schema
from app.jobs import scheduler as job_scheduler
from app.jobs import tasks as jobs
from app.monitoring import actual_features, actuals, sales_check

log = logging.getLogger(__name__)

monitor_cli = SchemaGroup("monitor", help="Monitoring jobs: drift, performance, loop, alerts, webhook.")
actuals_cli = SchemaGroup("actuals", help="Actual weekly sales for live accuracy.")


@monitor_cli.command("run")
@click.option("--job", "only", type=click.Choice(list(jobs.JOBS)), default=None, help="Run one job only.")
def monitor_run(only: str | None) -> None:
    """Run every monitoring job once, now (whatever the schedule says)."""
    ctx = extensions.jobs()
    outcomes = [jobs.run_job(ctx, only, manual=True)] if only else jobs.run_all(ctx, manual=True)
    failed = False
    for outcome in outcomes:
        if outcome.error:
            failed = True
            click.echo(f"{outcome.job:<12} FAILED  {outcome.error}", err=True)
        else:
            click.echo(f"{outcome.job:<12} ok      {json.dumps(outcome.result, default=str)}")
    if failed:
        raise SystemExit(1)


@actuals_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--correct", is_flag=True, help="Change stored weeks on purpose (each change is recorded).")
@click.option("--by", "by", default=None, help="Who corrects (recorded); required with --correct.")
@click.option("--reason", default=None, help="Why stored weeks change (recorded); required with --correct.")
def actuals_import(file: Path, correct: bool, by: str | None, reason: str | None) -> None:
    """Import actual sales from a CSV in train.csv's format (Store,Dept,Date,Weekly_Sales,IsHoliday).

    Checked as every path checks them (stores, departments and weeks of the production model's data,
    plausible sales, no repeated rows); a row that would change a stored week is refused unless --correct.
    """
    correction = None
    if correct:
        if not (by or "").strip() or not (reason or "").strip():
            raise click.UsageError("--correct needs --by NAME and --reason TEXT (both are recorded)")
        correction = actuals.Correction(by=f"cli ({by.strip()[:40]})", reason=reason.strip())
    config = current_app.config
    model = extensions.production_or_none()
    if model is None:
        click.echo(
            f"no production model: the stores, departments and sales sizes in {file.name} are not checked",
            err=True,
        )
    bounds = sales_check.bounds_for(
        model,
        dt.date.today(),
        float(config["ACTUALS_MAX_SALES_MULTIPLE"]),
        int(config["ACTUALS_MAX_WEEKS_AHEAD"]),
    )
    try:
        with extensions.storage().session() as session:
            result = actuals.import_csv(
                session,
                file.read_bytes(),
                name=file.name,
                model_name=config["MODEL_NAME"],
                bounds=bounds,
                correction=correction,
            )
    except actuals.ActualsError as error:
        _echo_errors(file, error)
        problems = sum(e.get("count", 1) for e in error.errors)
        click.echo(f"{file.name}: {problems} problem(s); nothing was imported", err=True)
        if isinstance(error, actuals.StoredWeekConflict):
            click.echo("to change stored weeks on purpose: add --correct --by NAME --reason TEXT", err=True)
        raise SystemExit(1) from None
    _echo_result(file, result)
    if correction is not None:
        click.echo(f"{file.name}: {result.corrected} stored week(s) corrected by {correction.by}, recorded")


@actuals_cli.command("corrections")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
def actuals_corrections(limit: int) -> None:
    """Stored weeks changed on purpose, newest first: old and new values, who, when and why."""
    with extensions.storage().session() as session:
        found = actuals.corrections(session, limit)
        if not found:
            click.echo("no stored week of actual sales has been corrected")
        for c in found:
            holiday = (
                f", holiday {c.old_is_holiday} -> {c.new_is_holiday}"
                if c.old_is_holiday != c.new_is_holiday
                else ""
            )
            click.echo(
                f"{c.corrected_at:%Y-%m-%d %H:%M} store {c.store} dept {c.dept} week {c.week}: "
                f"{c.old_weekly_sales:,.2f} -> {c.new_weekly_sales:,.2f}{holiday}; "
                f"by {c.corrected_by}: {c.reason}"
            )


@actuals_cli.command("import-features")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def actuals_import_features(file: Path) -> None:
    """Import actual covariates from a CSV in features.csv's format (Store,Date,Temperature,...,IsHoliday)."""
    try:
        with extensions.storage().session() as session:
            result = actual_features.import_features_csv(session, file.read_bytes(), name=file.name)
    except actual_features.FeaturesError as error:
        _echo_errors(file, error)
        raise SystemExit(1) from None
    _echo_result(file, result)


def _echo_result(file: Path, result: actuals.ImportResult) -> None:
    r = result.to_dict()
    click.echo(
        f"{file.name}: {r['received']} rows, {r['inserted']} inserted, {r['updated']} updated, "
        f"{r['unchanged']} unchanged"
    )


def _echo_errors(file: Path, error: actuals.ActualsError) -> None:
    for problem in error.errors:
        where = ", ".join(
            part
            for part in (
                file.name,
                f"line {problem['line']}" if problem.get("line") else "",
                f"column {problem['field']}" if problem.get("field") else "",
            )
            if part
        )
        if problem.get("field") == "details":
            where = file.name  # the count of problems not listed
        click.echo(f"{where}: {problem['message']}", err=True)


def scheduler_command() -> click.Command:
    @click.command("scheduler", help="Run the monitoring scheduler in the foreground (one process).")
    @with_appcontext
    @requires_schema
    def scheduler() -> None:
        if not logging.getLogger().handlers:  # a foreground service: say what each run did
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        blocking = job_scheduler.make_scheduler(extensions.jobs(), blocking=True)
        for job in blocking.get_jobs():
            click.echo(f"scheduled {job.name}: {job.trigger}")

        def stop(*_args: object) -> None:
            blocking.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            blocking.start()

    return scheduler


def register_cli(app: Flask) -> None:
    app.cli.add_command(monitor_cli)
    app.cli.add_command(actuals_cli)
    app.cli.add_command(scheduler_command())
