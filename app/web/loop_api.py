"""The weekly loop under /api/v1: published forecast runs (metadata, CSV, one series) and accuracy by lag.

Runs are read as stored: the CSV streams the rows that were published, never a new forecast.
Errors are the API's one JSON shape; an unknown run or series is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, request

from app.loop import publish
from app.loop.history import lineage_of
from app.web import context, published
from app.web.api import fast_json
from app.web.errors import ApiError, detail

bp = Blueprint("loop_api", __name__)


@bp.after_request
def _request_id_header(response: Response) -> Response:
    response.headers.setdefault("X-Request-ID", context.request_id())
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _int_arg(name: str, low: int, high: int, default: int | None) -> int | None:
    """An integer query parameter in [low, high]; 422 naming it otherwise, or for unknown parameters."""
    unknown = sorted(set(request.args) - {name})
    if unknown:
        raise ApiError(422, "invalid request", [detail(u, "unknown query parameter") for u in unknown])
    raw = request.args.get(name, "").strip()
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(422, "invalid request", [detail(name, f"must be an integer from {low} to {high}")])
    return int(raw)


def _run(run_id: int) -> publish.PublishedRun:
    run = publish.get_run(context.storage(), run_id)  # None for unknown ids and ids past the column's range
    if run is None:
        raise ApiError(404, f"no forecast run {run_id}", [detail("run_id", "no such forecast run")])
    return run


def _latest() -> publish.PublishedRun:
    run = publish.latest_run(context.storage())
    if run is None:
        raise ApiError(
            404,
            "no forecast run has been published yet",
            [detail("run", "run `flask --app wsgi forecast publish`")],
        )
    return run


def _csv(run: publish.PublishedRun) -> Response:
    rows = publish.run_rows(context.storage(), run.id)
    response = Response(publish.csv_lines(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename={published.csv_name(run)}"
    response.headers["X-Forecast-Run"] = str(run.id)
    return response


@bp.get("/forecast-runs")
def forecast_runs() -> Any:
    """Published runs, newest first."""
    limit = _int_arg("limit", 1, 500, 50)
    return fast_json(
        {"runs": [run.to_dict() for run in publish.list_runs(context.storage(), limit=limit or 50)]}
    )


@bp.get("/forecast-runs/<int:run_id>")
def forecast_run(run_id: int) -> Any:
    """One run's metadata."""
    return fast_json(_run(run_id).to_dict())


@bp.get("/forecast-runs/<int:run_id>.csv")
def forecast_run_csv(run_id: int) -> Response:
    """A whole run as CSV, streamed from the stored rows."""
    return _csv(_run(run_id))


@bp.get("/forecast-runs/latest.csv")
def latest_run_csv() -> Response:
    """The newest run as CSV."""
    return _csv(_latest())


@bp.get("/forecast-runs/latest/series/<int:store>/<int:dept>")
def latest_series(store: int, dept: int) -> Any:
    """One series' published forecasts in the newest run."""
    run = _latest()
    rows = (
        publish.run_rows(context.storage(), run.id, store=store, dept=dept)
        if published.valid_number(store) and published.valid_number(dept)
        else []
    )
    if not rows:
        raise ApiError(
            404,
            f"store {store} dept {dept} is not in forecast run {run.id}",
            [detail("store", "no published forecasts for this store and department")],
        )
    return fast_json(
        {
            "run": run.to_dict(),
            "store": store,
            "dept": dept,
            "forecasts": [published.forecast_out(row) for row in rows],
        }
    )


@bp.get("/accuracy")
def accuracy_by_lag() -> Any:
    """Published forecasts scored against actual sales per lag bucket, beside the backtest's figures."""
    weeks = _int_arg("weeks", 1, 520, None)
    model = context.forecaster()
    since = model.data_through - dt.timedelta(weeks=weeks) if weeks else None
    return fast_json(
        {
            "model_version": str(model.version),
            "lineage": lineage_of(model),
            "data_through": model.data_through.isoformat(),
            "since": since.isoformat() if since else None,
            "buckets": published.accuracy_buckets(context.storage(), model, since=since),
        }
    )
