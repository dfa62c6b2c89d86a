"""Covariates that have drifted: what the drift tests and the monitoring page expect to be flagged."""

from __future__ import annotations

import pandas as pd


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """A warm, heavily marked-down season: temperature 15 degrees warmer, every markdown tripled."""
    out = frame.copy()
    out["temperature"] = out["temperature"] + 15
    for k in range(1, 6):
        out[f"markdown{k}"] = out[f"markdown{k}"] * 3
    return out
