"""A deterministic stand-in for the core's Forecaster (the contract in CONTRACTS.md), for fast web tests
of shapes and error paths; the integration tests use the real small model (model_app)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


class FakeForecastError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class FakePrediction:
    store: int
    dept: int
    week: dt.date
    horizon: int
    prediction: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    inputs: dict = field(default_factory=dict)
    assumed: dict = field(default_factory=dict)
    cold_start: bool = False
    model_version: str = "v1"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FakeStoreForecast:
    departments: dict[int, list[FakePrediction]]
    total: list[dict[str, Any]]


class FakeForecaster:
    error_type = FakeForecastError

    def __init__(self) -> None:
        self.version = "v1"
        self.origin = pd.Timestamp("2012-10-26")
        self.metadata = {
            "kind": "hgb",
            "params": {"max_iter": 60, "learning_rate": 0.05, "features": {"align": True}},
            "training": {
                "start": "2010-02-05",
                "end": "2012-10-26",
                "rows": 1000,
                "stores": 2,
                "departments": 3,
            },
            "backtest": {
                "wmae": 1500.0,
                "baseline_wmae": 2100.0,
                "coverage_80": 0.81,
                "coverage_95": 0.94,
                "by_bucket": {
                    "1-4": {"wmae": 1200, "baseline_wmae": 1800},
                    "5-13": {"wmae": 1600, "baseline_wmae": 2300},
                },
            },
            "feature_importances": {"lag52": 0.4, "level13": 0.3, "is_holiday": 0.1},
            "features": ["store", "dept", "lag52", "level13", "is_holiday"],
        }
        self.calls: list[tuple] = []

    def valid_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.origin + pd.Timedelta(weeks=1), self.origin + pd.Timedelta(weeks=52)

    def stores(self) -> list[int]:
        return [1, 2]

    def departments(self, store: int) -> list[int]:
        if store not in (1, 2):
            raise FakeForecastError("store", f"unknown store {store}")
        return [1, 2, 3] if store == 1 else [1, 5]

    def _week(self, value: Any) -> tuple[dt.date, int]:
        week = pd.Timestamp(value)
        week = week + pd.Timedelta(days=(4 - week.weekday()) % 7)
        horizon = int((week - self.origin).days // 7)
        if not 1 <= horizon <= 52:
            raise FakeForecastError(
                "date", f"{week.date()} is outside the 52 weeks after {self.origin.date()}"
            )
        return week.date(), horizon

    def _one(self, store: int, dept: int, date: Any, **covariates: Any) -> FakePrediction:
        if store not in (1, 2):
            raise FakeForecastError("store", f"unknown store {store}")
        week, horizon = self._week(date)
        value = 1000.0 * store + 100.0 * dept + horizon
        inputs = {
            "temperature": covariates.get("temperature", 60.0),
            "fuel_price": covariates.get("fuel_price", 3.5),
        }
        assumed = {k: "last_year" for k in ("temperature", "fuel_price") if k not in covariates}
        return FakePrediction(
            store,
            dept,
            week,
            horizon,
            value,
            value - 50,
            value + 50,
            value - 100,
            value + 100,
            inputs,
            assumed,
            cold_start=dept == 5,
            model_version=self.version,
        )

    def predict_rows(self, rows: list[dict]) -> list[FakePrediction]:
        self.calls.append(("predict_rows", len(rows)))
        out = []
        for row in rows:
            row = dict(row)
            store, dept, date = row.pop("store"), row.pop("dept"), row.pop("date")
            out.append(self._one(store, dept, date, **row))
        return out

    def forecast(self, store, dept, start, weeks, covariates=None) -> list[FakePrediction]:
        self.calls.append(("forecast", store, dept, str(start), weeks, covariates))
        first, _ = self._week(start)
        out = []
        for i in range(weeks):
            cov = (covariates[i] if covariates and i < len(covariates) else {}) or {}
            out.append(self._one(store, dept, first + dt.timedelta(weeks=i), **cov))
        return out

    def forecast_store(self, store, start, weeks) -> FakeStoreForecast:
        departments = {d: self.forecast(store, d, start, weeks) for d in self.departments(store)}
        total = []
        for i in range(weeks):
            week = [departments[d][i] for d in departments]
            total.append(
                {
                    "week": week[0].week,
                    "horizon": week[0].horizon,
                    **{
                        k: sum(getattr(p, k) for p in week)
                        for k in ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")
                    },
                }
            )
        return FakeStoreForecast(departments, total)

    def history(self, store, dept, weeks=104) -> pd.DataFrame:
        dates = pd.date_range(end=self.origin, periods=weeks, freq="7D")
        return pd.DataFrame(
            {
                "date": dates,
                "weekly_sales": [1000.0 * store + 100 * dept + (i % 13) * 10 for i in range(weeks)],
            }
        )
