"""Published forecast runs under /api/v1: metadata, the whole run as CSV, one series of the newest run.

Runs are read as stored: the CSV streams the rows that were published, never a new forecast, a chunk
of rows at a time from the database (a worker's memory does not grow with the run). "latest" is the
newest run of the production version (publish.latest_forecast_run). Errors are the API's one JSON shape; an
unknown run or series is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, stream_with_context

from app import extensions
from app.loop import publish
from app.web import published
from app.web.api import bp
from app.web.api.errors import ApiError, detail
from app.web.api.openapi import operation, query_args
from app.web.schemas import (
    ForecastRunOut,
    ForecastRunsResponse,
    ListQuery,
    RunCsvQuery,
    SeriesForecastResponse,
)

RUN_CSV = (
    "Store,Dept,Date,lag,prediction,lower_80,upper_80,lower_95,upper_95, then a q0.1-style column per asked "
    "quantile; one row per series and week"
)
RUN_CSV_ERRORS = {
    404: "No such forecast run (or no run published yet), or unknown route",
    409: "Quantiles asked of a run whose model's interval shape is no longer on record",
    422: "Bad `quantiles` (each a number in 0.01..0.99) or an unknown query parameter",
}


def _run(run_id: int) -> publish.PublishedRun:
    run = publish.get_forecast_run(
        extensions.storage(), run_id
    )  # None for unknown ids and ids past the column's range
    if run is None:
        raise ApiError(404, f"no forecast run {run_id}", [detail("run_id", "no such forecast run")])
    return run


def _latest() -> publish.PublishedRun:
    run = publish.latest_forecast_run(extensions.storage(), current_app.config["MODEL_NAME"])
    if run is None:
        raise ApiError(
            404,
            "no forecast run of the production model has been published yet",
            [detail("run", "run `flask --app wsgi forecast publish`")],
        )
    return run


def _csv(run: publish.PublishedRun) -> Response:
    levels = query_args().quantiles
    quantiles = None
    if levels:
        try:
            quantiles = publish.run_quantiles(
                extensions.storage(), current_app.config["MODEL_NAME"], run, levels
            )
        except publish.QuantilesUnavailable as error:
            problem = [detail("quantiles", str(error))]
            raise ApiError(409, "quantiles unavailable for this run", problem) from None
    # the query runs now: a database error is a 503
    rows = publish.RunCsv(extensions.storage(), run.id, quantiles)
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.call_on_close(rows.close)
    response.headers["Content-Disposition"] = f"attachment; filename={published.csv_name(run)}"
    response.headers["X-Forecast-Run"] = str(run.id)
    return response


@bp.get("/forecast-runs")
@operation(
    "Forecast runs",
    "published",
    description="Published runs, newest first: 52 weeks for every series from a week of data.",
    query=ListQuery,
    ok=ForecastRunsResponse,
    ok_description="The runs",
)
def forecast_runs() -> Any:
    """Published runs, newest first."""
    limit = query_args().limit
    return {"runs": [run.to_dict() for run in publish.list_forecast_runs(extensions.storage(), limit=limit)]}


@bp.get("/forecast-runs/<int:run_id>")
@operation(
    "One forecast run",
    "published",
    description="When, from which week of data, by which model version; rows and series.",
    ok=ForecastRunOut,
    ok_description="The run",
    errors={404: "No such forecast run (or no run published yet), or unknown route"},
)
def forecast_run(run_id: int) -> Any:
    """One run's metadata."""
    return _run(run_id).to_dict()


@bp.get("/forecast-runs/<int:run_id>.csv")
@operation(
    "A forecast run as CSV",
    "published",
    description=(
        "Every stored row of the run, streamed, by store, dept and week; `quantiles` adds a column per level."
    ),
    query=RunCsvQuery,
    json_response=False,
    csv_response=RUN_CSV,
    errors=RUN_CSV_ERRORS,
)
def forecast_run_csv(run_id: int) -> Response:
    """A whole run as CSV, streamed from the stored rows."""
    return _csv(_run(run_id))


@bp.get("/forecast-runs/latest.csv")
@operation(
    "The newest forecast run as CSV",
    "published",
    description=(
        "The production model's run from the newest week of data (404 before its first is published)."
    ),
    query=RunCsvQuery,
    json_response=False,
    csv_response=RUN_CSV,
    errors=RUN_CSV_ERRORS,
)
def latest_run_csv() -> Response:
    """The production model's newest run as CSV."""
    return _csv(_latest())


@bp.get("/forecast-runs/latest/series/<int:store>/<int:dept>")
@operation(
    "One series of the newest run",
    "published",
    description="The production model's published forecasts of one store-department, 1-52 weeks ahead.",
    ok=SeriesForecastResponse,
    ok_description="The series",
    errors={404: "No run published yet, the series is not in it, or unknown route"},
)
def latest_series(store: int, dept: int) -> Any:
    """One series' published forecasts in the production model's newest run."""
    run = _latest()
    rows = (
        publish.forecast_run_rows(extensions.storage(), run.id, store=store, dept=dept)
        if published.valid_number(store) and published.valid_number(dept)
        else []
    )
    if not rows:
        raise ApiError(
            404,
            f"store {store} dept {dept} is not in forecast run {run.id}",
            [detail("store", "no published forecasts for this store and department")],
        )
    return {
        "run": run.to_dict(),
        "store": store,
        "dept": dept,
        "forecasts": [published.forecast_out(row) for row in rows],
    }
