"""What the planner pages share: the no-model page, the form's options, history for charts, kept downloads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
from flask import render_template, request, url_for

from app.forecasting.inputs import COVARIATES
from app.web.csv_io import PREDICTION_COLUMNS, predictions_csv
from app.web.pages import downloads

log = logging.getLogger(__name__)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def no_model() -> tuple[str, int]:
    return render_template("pages/no_model.html"), 503


def store_options(model: Any) -> list[int]:
    return [int(s) for s in model.stores()]


def dept_options(model: Any, store: Any) -> list[int]:
    try:
        return [int(d) for d in model.departments(int(store))]
    except (TypeError, ValueError, LookupError):
        return []
    except Exception as error:  # noqa: BLE001 - ForecastError (unknown store): an empty list, the form says why
        log.debug("no departments for store %r: %s", store, error)
        return []


def covariate_fields() -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "label": c.label,
            "unit": c.unit,
            "min": c.low,
            "max": c.high,
            "description": c.description,
        }
        for c in COVARIATES.values()
    ]


def frame(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(predictions)


def history(model: Any, store: int, dept: int, weeks: int = 104) -> pd.DataFrame:
    try:
        return model.history(store, dept, weeks=weeks)
    except Exception as error:  # noqa: BLE001 - a chart without history is still useful
        log.debug("no history for %s/%s: %s", store, dept, error)
        return pd.DataFrame(columns=["date", "weekly_sales"])


def kept_csv(
    predictions: list[dict[str, Any]], name: str, columns: Sequence[str] = PREDICTION_COLUMNS
) -> str:
    """The download link of the predictions the page shows (kept, not recomputed on download)."""
    text = predictions_csv(predictions, columns=columns)
    return url_for("pages.download", token=downloads.keep(text), filename=name)
