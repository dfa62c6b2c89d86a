"""Datasets the tests read: the real Walmart files (the `real_data` tests, skipped when they are absent)
and single weeks of a dataset, as the weekly loop ingests them."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from tests.helpers.paths import REPO_ROOT

REAL_DATA_DIR = Path(os.environ.get("STORECAST_DATA") or REPO_ROOT.parent / "shared" / "data" / "walmart")


def has_real_data() -> bool:
    """True when the Kaggle files are there (train.csv stands for the set)."""
    return (REAL_DATA_DIR / "train.csv").is_file()


def week_rows(dataset, week: pd.Timestamp) -> pd.DataFrame:
    """The sales rows of one week: what arrives when that week's actuals are ingested."""
    return dataset.sales[dataset.sales["date"] == week]
