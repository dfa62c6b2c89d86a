"""The real Walmart files: where the `real_data` tests find them (skipped when they are absent)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

REAL_DATA_DIR = Path(os.environ.get("STORECAST_DATA") or REPO_ROOT.parent / "shared" / "data" / "walmart")


def has_real_data() -> bool:
    """True when the Kaggle files are there (train.csv stands for the set)."""
    return (REAL_DATA_DIR / "train.csv").is_file()
