"""The `flask` commands for the forecasting core: train, backtest, submission.

Thin wrappers over app.forecasting: each parses options, calls one core function and prints.
Input problems (DataError, ForecastError, bad dates) become a one-line click error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pandas as pd
from flask import Flask, current_app

from app import extensions
from app.cli.data import DATA_HELP, data_dir, load_dataset, parse_date, require_deployment_data
from app.cli.db import requires_schema
from app.cli.files import OutputFile, written_atomically
from app.config import train_params
from app.forecasting.backtest import check_backtest, run_backtest
from app.forecasting.data import DataError, load_test_rows
from app.forecasting.engine import ENGINES, Engine
from app.forecasting.estimators import KINDS
from app.forecasting.forecaster import ForecastError
from app.forecasting.training import limit_training_threads, save_model, train
from app.jsonable import jsonable
from app.registry import versions
from app.registry.actual_history import dataset_with_actuals
from app.registry.training_runs import track_run


def _params() -> dict:
    """Model/pipeline params of the configuration: TRAIN_MAX_SERIES, TRAIN_PARAMS (tests: tiny models)."""
    return train_params(current_app.config)


def _progress(message: str) -> None:
    click.echo(f"  … {message}", err=True)


def register_cli(app: Flask) -> None:
    """Attach the core's commands to app.cli."""

    @app.cli.command("train")
    @click.option("--data", "data", default=None, help=DATA_HELP)
    @click.option("--model", "kind", type=click.Choice(KINDS), default="hgb", show_default=True)
    @click.option("--through", default=None, help="last week of sales to train on (YYYY-MM-DD; default: all)")
    @click.option("--with-actuals", is_flag=True, help="add the actual sales ingested since to the data")
    @requires_schema
    def train_command(data: str | None, kind: str, through: str | None, with_actuals: bool) -> None:
        """Train a model of the deployment's data, write it under MODELS_DIR and register it.

        The first version is production; later ones go to staging until promoted.
        """
        dataset = load_dataset(data)
        require_deployment_data(dataset, data)
        if with_actuals:
            dataset = dataset_with_actuals(dataset, extensions.storage())
        through_ts = parse_date(through, "--through")
        if through_ts is not None and through_ts < dataset.sales["date"].min():
            raise click.ClickException(f"--through {through} is before the first sales week")
        if through_ts is not None and through_ts > dataset.last_week:
            raise click.ClickException(
                f"--through {through} is after the last sales week, {dataset.last_week.date()}"
            )
        click.echo(f"training {kind} on {dataset.source}")
        try:
            with limit_training_threads(int(current_app.config.get("TRAIN_THREADS") or 0)):
                trained = train(dataset, kind, through=through_ts, progress=_progress, params=_params())
        except (ValueError, ForecastError) as exc:
            raise click.ClickException(str(exc)) from None
        info = save_model(trained, current_app.config["MODELS_DIR"])
        bt = trained.metadata.get("backtest") or {}
        click.echo(f"wrote {info.path} ({info.path.stat().st_size / 1e6:.1f} MB, sha256 {info.sha256[:16]}…)")
        if bt:
            click.echo(
                f"internal backtest from {bt['origin']}: WMAE {bt['wmae']:,.1f} vs seasonal naive "
                f"{bt['baseline_wmae']:,.1f}; coverage 80% {100 * bt['coverage_80']:.1f}%, "
                f"95% {100 * bt['coverage_95']:.1f}%"
            )
        hook = current_app.extensions.get("on_model_trained")
        if hook is not None:
            click.echo(_registered(hook(info)))

    @app.cli.command("backtest")
    @click.option("--data", "data", default=None, help=DATA_HELP)
    @click.option("--origin", required=True, help="last week of sales the model sees (YYYY-MM-DD)")
    @click.option("--horizon", required=True, type=click.IntRange(1, 52), help="weeks to forecast (1-52)")
    @click.option("--model", "kind", type=click.Choice(KINDS), default="hgb", show_default=True)
    @click.option(
        "--folds", type=click.IntRange(1, 12), default=1, show_default=True, help="origins, 13 weeks apart"
    )
    @click.option("--json", "json_path", type=OutputFile(), default=None, help="write the figures")
    @click.option("--predictions", "pred_path", type=OutputFile(), default=None, help="write a CSV")
    @click.option(
        "--totals",
        "totals_path",
        type=OutputFile(),
        default=None,
        help="write the totals (chain, departments, stores) per week as CSV",
    )
    @click.option(
        "--engine",
        "engine_kind",
        type=click.Choice(ENGINES),
        default=None,
        help="where the forecasts are scored (default: FORECAST_ENGINE)",
    )
    @requires_schema
    def backtest_command(
        data: str | None,
        origin: str,
        horizon: int,
        kind: str,
        folds: int,
        json_path: str | None,
        pred_path: str | None,
        totals_path: str | None,
        engine_kind: str | None,
    ) -> None:
        """Train up to --origin, forecast --horizon weeks, score against the seasonal naive."""
        dataset = load_dataset(data)
        origin_ts = parse_date(origin, "--origin")
        params = _params()
        settings = {"origin": str(origin_ts.date()), "horizon": horizon, "folds": folds, "params": params}
        try:
            check_backtest(dataset, origin_ts, horizon, folds)  # a mistyped origin records no failed run
            with track_run(extensions.storage(), "backtest", kind, params=settings, dataset=dataset) as run:
                result = run_backtest(
                    dataset,
                    origin_ts,
                    horizon,
                    kind=kind,
                    folds=folds,
                    progress=_progress,
                    params=params,
                    engine=Engine.from_config(current_app.config, kind=engine_kind),
                )
                figures = jsonable(result.to_dict())
                run.log_metrics(figures)
        except (ValueError, ForecastError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(result.format_table())
        if json_path:
            with written_atomically(Path(json_path)) as handle:
                handle.write(json.dumps(figures, indent=1))
            click.echo(f"wrote {json_path}")
        if pred_path:
            with written_atomically(Path(pred_path)) as handle:
                result.predictions.to_csv(handle, index=False)
            click.echo(f"wrote {pred_path} ({len(result.predictions):,} rows)")
        if totals_path:
            with written_atomically(Path(totals_path)) as handle:
                result.totals.to_csv(handle, index=False)
            click.echo(f"wrote {totals_path} ({len(result.totals):,} totals)")

    @app.cli.command("submission")
    @click.option("--data", "data", default=None, help=DATA_HELP)
    @click.option("--out", "out", required=True, type=OutputFile(), help="CSV to write")
    @click.option("--model", "kind", type=click.Choice(KINDS), default="hgb", show_default=True)
    def submission_command(data: str | None, out: str, kind: str) -> None:
        """Predict test.csv (Id = Store_Dept_Date, Weekly_Sales) with a model trained on all sales."""
        data = data_dir(data)
        dataset = load_dataset(data)
        if data:
            try:
                rows = load_test_rows(data, dataset.stores)
            except DataError as exc:
                raise click.ClickException(str(exc)) from None
        else:
            rows = _synthetic_test_rows(dataset)
        try:
            trained = train(dataset, kind, progress=_progress, params=_params())
            pred = trained.forecaster.predict_frame(rows[["store", "dept", "date"]])
        except (ValueError, ForecastError) as exc:
            raise click.ClickException(str(exc)) from None
        frame = pd.DataFrame(
            {
                "Id": rows["store"].astype(str)
                + "_"
                + rows["dept"].astype(str)
                + "_"
                + pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d"),
                "Weekly_Sales": np.round(pred["prediction"].to_numpy(), 2),
            }
        )
        with written_atomically(Path(out)) as handle:
            frame.to_csv(handle, index=False)
        click.echo(f"wrote {out} ({len(frame):,} rows)")


def _registered(version: dict | None) -> str:
    """Which stage the new version got, and why."""
    if not version:
        return "not registered"
    label = version["label"]
    if version["stage"] == "production":
        return f"registered {label} in production: there was no production model yet"
    production = versions.production_version(extensions.storage(), current_app.config["MODEL_NAME"])
    kept = f"production {production['label']} is kept" if production else "there is no production model"
    return f"registered {label} in staging: {kept}; promote with `flask models promote {label}`"


def _synthetic_test_rows(dataset) -> pd.DataFrame:
    """Without test.csv: every series for each features week after the last sales week (<= 52)."""
    last = dataset.last_week
    weeks = sorted(d for d in dataset.features["date"].unique() if last < d <= last + pd.Timedelta(weeks=52))
    series = dataset.sales[["store", "dept"]].drop_duplicates()
    rows = series.merge(pd.DataFrame({"date": pd.to_datetime(weeks)}), how="cross")
    return rows.sort_values(["store", "dept", "date"]).reset_index(drop=True)
