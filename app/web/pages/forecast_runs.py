"""Pages of the weekly loop: the published forecast runs (with their CSVs) and one series' published
forecasts against actual sales. Everything shown is read from the stored runs and actuals."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from flask import Blueprint, current_app, redirect, render_template, request, url_for

from app import extensions
from app.loop import publish
from app.registry import versions
from app.web import charts, context, published

log = logging.getLogger(__name__)

bp = Blueprint("loop_pages", __name__)

LAG_CHOICES = (1, 2, 4, 8, 13, 26, 52)
CONTEXT_WEEKS = 13  # weeks of history drawn before the first published forecast


@bp.get("/forecast-runs")
def runs_page() -> str:
    """Published runs of every version, newest first, each with its CSV; the production model's
    newest run (what "latest" serves everywhere) on top; a form to open one series."""
    storage = extensions.storage()
    runs = publish.list_forecast_runs(storage)
    latest = publish.latest_forecast_run(storage, current_app.config["MODEL_NAME"])
    production = versions.production_version(storage, current_app.config["MODEL_NAME"])
    return render_template(
        "pages/forecast_runs.html",
        runs=runs,
        latest=latest,
        production=production["label"] if production else None,
    )


@bp.get("/series")
def series_lookup() -> Any:
    """The runs page's series form (a GET, so it works without JS): redirect to the series page."""
    store, dept = request.args.get("store", "").strip(), request.args.get("dept", "").strip()
    if not (store.isascii() and store.isdigit() and dept.isascii() and dept.isdigit()):
        message = "Give a store and a department number."
        return render_template("error.html", status=422, title="Invalid series", message=message), 422
    return redirect(url_for("loop_pages.series_page", store=int(store), dept=int(dept)), code=303)


def _history(model: Any, store: int, dept: int) -> pd.DataFrame:
    if model is None:
        return pd.DataFrame(columns=["date", "weekly_sales"])
    try:
        return model.history(store, dept, weeks=104)
    except Exception as error:  # noqa: BLE001 - unknown to the model: the published rows still show
        log.debug("no history for %s/%s: %s", store, dept, error)
        return pd.DataFrame(columns=["date", "weekly_sales"])


def _actuals_line(history: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The grey line of the chart: ingested actual sales beside the forecasts, and the model's history
    for a few weeks before the first of them."""
    scored = pd.DataFrame(
        [{"date": r["week"], "weekly_sales": r["actual"]} for r in rows if r["actual"] is not None],
        columns=["date", "weekly_sales"],
    )
    if len(history):
        history = history[["date", "weekly_sales"]].copy()
        history["date"] = pd.to_datetime(history["date"])
        first = pd.Timestamp(rows[0]["week"]) - pd.Timedelta(weeks=CONTEXT_WEEKS)
        history = history[history["date"] >= first]
    frames = [f for f in (history, scored.assign(date=pd.to_datetime(scored["date"]))) if len(f)]
    if not frames:
        return scored
    line = pd.concat(frames).drop_duplicates("date", keep="last").sort_values("date")
    return line


@bp.get("/series/<int:store>/<int:dept>")
def series_page(store: int, dept: int) -> Any:
    """One series: its published forecasts `lag` weeks ahead against actual sales, and the production
    model's newest run."""
    lag = request.args.get("lag", "1")
    lag = int(lag) if lag.isascii() and lag.isdigit() and 1 <= int(lag) <= 52 else 1
    valid = published.valid_number(store) and published.valid_number(dept)
    db = extensions.storage()
    rows = publish.published_against_actuals(db, store, dept, lag=lag) if valid else []
    latest = publish.latest_forecast_run(db, current_app.config["MODEL_NAME"])
    latest_rows = publish.forecast_run_rows(db, latest.id, store=store, dept=dept) if latest and valid else []
    model = context.forecaster_or_none()
    history = _history(model, store, dept) if valid else pd.DataFrame()
    scored = [r for r in rows if r["actual"] is not None]
    view: dict[str, Any] = {
        "store": store,
        "dept": dept,
        "lag": lag,
        "lags": LAG_CHOICES,
        "rows": rows[::-1],  # newest week first in the table
        "latest": latest,
        "latest_rows": latest_rows,
        "scored": len(scored),
        "inside_80": sum(1 for r in scored if r["lower_80"] <= r["actual"] <= r["upper_80"]),
        "chart": None,
        "latest_chart": None,
        "legend_items": charts.legend_items(),
    }
    if not rows and not latest_rows:
        return render_template("pages/series.html", **view), 404
    if rows:
        view["chart"] = charts.forecast_chart(
            _actuals_line(history, rows),
            pd.DataFrame(rows),
            description=f"Store {store}, dept {dept}: published forecasts against actual sales",
        )
    if latest_rows:
        recent = history.tail(52) if len(history) else history
        view["latest_chart"] = charts.forecast_chart(
            recent,
            pd.DataFrame(latest_rows),
            description=f"Store {store}, dept {dept}: sales history and the newest published forecast",
        )
    return render_template("pages/series.html", **view)
