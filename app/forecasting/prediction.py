"""What a forecast answers, as plain Python: one Prediction per (store, department, week).

Every interface (the API, the pages, the log, the published runs) reads these, so their values are
plain JSON-ready floats, strings and dates, and `assumed` says where each covariate came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.explain import COMPONENTS

BANDS = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")
SOURCE_NAMES = {
    0: "features table",
    1: "same week last year",
    2: "last known value",
    3: "missing",
    4: "caller",
    5: "holiday calendar",
}


@dataclass
class Prediction:
    store: int
    dept: int
    week: dt.date
    horizon: int
    prediction: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    # Plain JSON values (floats, None for unknown, a bool): the log and the API store and send them as is.
    inputs: dict[str, Any] = field(default_factory=dict)
    assumed: dict[str, str] = field(default_factory=dict)
    cold_start: bool = False
    model_version: str = ""
    data_through: dt.date | None = None  # the last week of known sales the forecast used
    # Asked for with explain=True: dollar parts summing to `prediction` (COMPONENTS order), and
    # the actual sales of the week a year before that the model reads (holiday-aligned).
    components: dict[str, float] | None = None
    last_year_week: dt.date | None = None
    last_year_sales: float | None = None
    # Asked for with quantiles=[...]: each level's quantile ("q0.1": ...), rising with the level.
    quantiles: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["quantiles"] is None:
            del d["quantiles"]
        d["week"] = self.week.isoformat()
        d["data_through"] = self.data_through.isoformat() if self.data_through else None
        d["last_year_week"] = self.last_year_week.isoformat() if self.last_year_week else None
        return d


@dataclass
class StoreForecast:
    store: int
    departments: dict[int, list[Prediction]]
    total: list[Prediction]

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "departments": {str(k): [p.to_dict() for p in v] for k, v in self.departments.items()},
            "total": [p.to_dict() for p in self.total],
        }


def quantile_name(q: float) -> str:
    """The key of a quantile in a Prediction's `quantiles` and a frame's columns: "q0.9", "q0.95"."""
    return f"q{q:g}"


def to_predictions(res: dict[str, np.ndarray], version: str, through: dt.date) -> list[Prediction]:
    """The core's arrays as Prediction objects: plain Python values, ready for the log and the API."""
    dates = (calendar.EPOCH + res["week"] * 7).astype("datetime64[D]").tolist()
    values, source = res["values"].tolist(), res["source"].tolist()
    holiday, hsrc = res["holiday"].tolist(), res["holiday_source"].tolist()
    cols = list(zip(*(res[k].tolist() for k in ("store", "dept", "horizon", *BANDS, "cold")), strict=True))
    out = []
    for j, (s, d, h, p, l8, u8, l9, u9, c) in enumerate(cols):
        vals, srcs = values[j], source[j]
        inputs = {name: (None if v != v else v) for name, v in zip(COVARIATE_COLUMNS, vals, strict=True)}
        inputs["is_holiday"] = bool(holiday[j])
        assumed = {
            name: SOURCE_NAMES[sc] for name, sc in zip(COVARIATE_COLUMNS, srcs, strict=True) if sc != 4
        }
        if hsrc[j] != 4:
            assumed["is_holiday"] = SOURCE_NAMES[hsrc[j]]
        out.append(
            Prediction(s, d, dates[j], h, p, l8, u8, l9, u9, inputs, assumed, bool(c), version, through)
        )
    if "components" in res:
        names = COMPONENTS
        last_dates = (calendar.EPOCH + res["last_year_week"] * 7).astype("datetime64[D]").tolist()
        for item, parts, last_date, sales in zip(
            out, res["components"].tolist(), last_dates, res["last_year_sales"].tolist(), strict=True
        ):
            item.components = dict(zip(names, parts, strict=True))
            item.last_year_week = last_date
            item.last_year_sales = None if sales != sales else sales
    if "quantiles" in res:
        names = [quantile_name(q) for q in res["quantile_levels"].tolist()]
        for item, row in zip(out, res["quantiles"].tolist(), strict=True):
            item.quantiles = dict(zip(names, row, strict=True))
    return out


@dataclass
class TotalForecast:
    """A total above a store (the chain, or a department across stores) week by week, and its parts'
    totals (the chain's departments, the department's stores): frames of totals.level_totals, with
    key, date, horizon, prediction and the 80% and 95% bounds."""

    level: str
    key: int | None
    part_level: str
    total: pd.DataFrame
    parts: pd.DataFrame
    model_version: str
    data_through: dt.date | None
