"""The dataset a command works on: --data, else STORECAST_DATA from the app's config, else synthetic;
and the check that it is the deployment's recorded data before anything is trained or registered."""

from __future__ import annotations

import click
import pandas as pd
from flask import current_app

from app import extensions
from app.forecasting.data import DataError, Dataset
from app.forecasting.synthetic import load_or_generate
from app.registry import data_source, versions

DATA_HELP = "directory with the Kaggle CSVs (default: STORECAST_DATA, else the synthetic dataset)"
DATA_REFUSED_EXIT = 4


class DataRefused(click.ClickException):
    """Other data than the deployment's: the command stops before training (exit 4)."""

    exit_code = DATA_REFUSED_EXIT


def parse_date(value: str | None, option: str) -> pd.Timestamp | None:
    """A command's date option, or a one-line error naming it, before any work is done."""
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise click.ClickException(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def data_dir(option: str | None) -> str | None:
    return option or current_app.config.get("STORECAST_DATA") or None


def load_dataset(option: str | None) -> Dataset:
    """The dataset, or a one-line click error naming what is wrong with the files."""
    try:
        return load_or_generate(data_dir(option))
    except DataError as error:
        raise click.ClickException(str(error)) from None


def given_source(dataset: Dataset, option: str | None) -> data_source.Source:
    return data_source.Source.of(dataset, data_dir(option))


def require_deployment_data(dataset: Dataset, option: str | None) -> data_source.Source:
    """The deployment's data source, after checking `dataset` is it (the first call records it).

    Other data stops the command with the recorded source and the one command that switches.
    """
    try:
        return data_source.ensure(
            extensions.storage(),
            current_app.config["MODEL_NAME"],
            given_source(dataset, option),
            instance_file=current_app.config.get("DATA_SOURCE_FILE"),
            by=versions.default_actor(),
        )
    except data_source.DataSourceMismatch as error:
        raise DataRefused(str(error)) from None
