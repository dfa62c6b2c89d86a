"""The dataset a command works on: --data, else STORECAST_DATA from the app's config, else synthetic."""

from __future__ import annotations

import click
from flask import current_app

from app.forecasting.data import DataError, Dataset
from app.forecasting.synthetic import load_or_generate

DATA_HELP = "directory with the Kaggle CSVs (default: STORECAST_DATA, else the synthetic dataset)"


def data_dir(option: str | None) -> str | None:
    return option or current_app.config.get("STORECAST_DATA") or None


def load_dataset(option: str | None) -> Dataset:
    """The dataset, or a one-line click error naming what is wrong with the files."""
    try:
        return load_or_generate(data_dir(option))
    except DataError as error:
        raise click.ClickException(str(error)) from None
