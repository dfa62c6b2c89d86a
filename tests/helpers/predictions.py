"""Prediction rows shaped like Prediction.to_dict(), for the prediction log and the monitoring on it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.forecasting.data import COVARIATE_COLUMNS as COVARIATES


def prediction_rows(frame: pd.DataFrame, *, version: str = "v1", horizon: int = 1) -> list[dict]:
    """One prediction dict per frame row (as Prediction.to_dict() gives them), inputs from its covariates."""
    rows = []
    for record in frame.to_dict("records"):
        value = float(record.get("prediction", record.get("weekly_sales", 1000.0)))
        inputs = {name: (None if pd.isna(record.get(name)) else float(record[name])) for name in COVARIATES}
        inputs["is_holiday"] = bool(record.get("is_holiday", False))
        week = pd.Timestamp(record.get("week", record.get("date"))).date()
        rows.append(
            {
                "store": int(record["store"]),
                "dept": int(record["dept"]),
                "week": week,
                "horizon": horizon,
                "prediction": value,
                "lower_80": float(record.get("lower_80", value * 0.9)),
                "upper_80": float(record.get("upper_80", value * 1.1)),
                "lower_95": float(record.get("lower_95", value * 0.8)),
                "upper_95": float(record.get("upper_95", value * 1.2)),
                "inputs": inputs,
                "assumed": {"temperature": "features.csv"},
                "cold_start": False,
                "model_version": version,
            }
        )
    return rows


def simple_predictions(n: int, *, store: int = 1, dept: int = 1, start: str = "2012-11-02") -> list[dict]:
    """n consecutive weeks of one store-department with made-up values."""
    weeks = pd.date_range(start, periods=n, freq="7D")
    rng = np.random.default_rng(n)
    frame = pd.DataFrame(
        {
            "store": store,
            "dept": dept,
            "week": weeks,
            "prediction": rng.uniform(1000, 5000, n),
            "temperature": rng.normal(60, 10, n),
            "fuel_price": 3.5,
            "cpi": 200.0,
            "unemployment": 7.0,
            "is_holiday": False,
        }
    )
    return prediction_rows(frame)
