"""Totals above a store: the whole chain and a department across stores, week by week (JSON or CSV)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.forecasting.prediction import BANDS
from app.web import context
from app.web.api import bp
from app.web.api.openapi import operation, query_args
from app.web.csv_io import predictions_csv
from app.web.schemas import (
    ChainForecastResponse,
    DepartmentTotalParams,
    DepartmentTotalResponse,
    TotalForecastParams,
)

TOTAL_CSV_COLUMNS = ("level", "dept", "week", "horizon", *BANDS, "data_through")
TOTALS_NOTE = (
    "Each week's total is the sum of its series' forecasts (to the cent); its 80% and 95% intervals are "
    "calibrated on past totals of the same level, not added up from the series' intervals."
)
CSV_NOTE = "One row per week: level, dept, week, horizon, prediction and intervals, data_through."


def _wants_csv(suffix: bool) -> bool:
    return suffix or request.accept_mimetypes.best == "text/csv"


def _csv(answer: dict[str, Any], name: str) -> Response:
    response = Response(
        predictions_csv(answer["predictions"], columns=TOTAL_CSV_COLUMNS), mimetype="text/csv"
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename={name}_{answer['start']}_{answer['weeks']}w.csv"
    )
    return response


def _chain(suffix: bool) -> Any:
    query = query_args()
    answer = context.forecast_total("chain", None, query.start, query.weeks)
    if _wants_csv(suffix):
        return _csv(answer, "storecast_chain")
    return {**answer, "departments": answer["parts"]}


def _department(dept: str, suffix: bool) -> Any:
    query = query_args(dept=dept)
    answer = context.forecast_total("department", query.dept, query.start, query.weeks)
    if _wants_csv(suffix):
        return _csv(answer, f"storecast_dept{query.dept}")
    return {**answer, "stores": answer["parts"]}


CHAIN = {
    "description": "The whole chain's forecast sales per week, and its departments ranked by their total. "
    + TOTALS_NOTE
    + " `Accept: text/csv` answers with the weeks as CSV.",
    "query": TotalForecastParams,
    "ok": ChainForecastResponse,
    "ok_description": "The chain's total per week and its departments",
    "csv_response": CSV_NOTE,
}
DEPARTMENT = {
    "description": "One department's forecast sales across every store per week, and the stores ranked "
    "by their total. " + TOTALS_NOTE + " `Accept: text/csv` answers with the weeks as CSV.",
    "query": DepartmentTotalParams,
    "ok": DepartmentTotalResponse,
    "ok_description": "The department's total per week and its stores",
    "csv_response": CSV_NOTE,
}


@bp.get("/chain/forecast")
@operation("Forecast the whole chain", "predictions", **CHAIN)
def chain_forecast() -> Any:
    """The chain's total per week for `weeks` weeks from `start` (JSON, or CSV when asked)."""
    return _chain(False)


@bp.get("/chain/forecast.csv")
@operation("Forecast the whole chain (CSV)", "predictions", **CHAIN, json_response=False)
def chain_forecast_csv() -> Any:
    """The chain's total per week as CSV."""
    return _chain(True)


@bp.get("/departments/<dept>/forecast")
@operation("Forecast a department across stores", "predictions", **DEPARTMENT)
def department_forecast(dept: str) -> Any:
    """A department's total across stores per week (JSON, or CSV when asked)."""
    return _department(dept, False)


@bp.get("/departments/<dept>/forecast.csv")
@operation("Forecast a department across stores (CSV)", "predictions", **DEPARTMENT, json_response=False)
def department_forecast_csv(dept: str) -> Any:
    """A department's total across stores per week as CSV."""
    return _department(dept, True)
