"""The store page: every department of a store ranked by forecast, and the store total."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from flask import Blueprint, render_template, request
from pydantic import ValidationError

from app.forecasting.inputs import MAX_HORIZON
from app.serving import predictions
from app.web import charts, context, words
from app.web.api.errors import ApiError
from app.web.pages import helpers
from app.web.schemas import (
    DEFAULT_WEEKS,
    StoreForecastQuery,
)

log = logging.getLogger(__name__)

bp = Blueprint("store_pages", __name__)


@bp.get("/store")
def store_page() -> Any:
    """A whole store: departments ranked by forecast, the store total chart."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
    stores = helpers.store_options(model)
    form = {
        "store": request.args.get("store", "").strip(),
        "start": request.args.get("start", "").strip() or predictions.default_start(model).isoformat(),
        "weeks": request.args.get("weeks", "").strip() or str(DEFAULT_WEEKS),
    }
    errors: dict[str, str] = {}
    result = None
    status = 200
    if form["store"]:
        try:
            query = StoreForecastQuery.model_validate({k: v for k, v in form.items() if v})
        except ValidationError as error:
            errors = words.form_errors(error, model)
        else:
            try:
                result = _run_store(model, query)
            except ApiError as error:
                errors = words.answer_errors(error.details, error.message, model)
        if "date" in errors:  # the store form calls its week `start` (the API's alias of `date`)
            errors.setdefault("start", errors.pop("date"))
        if errors:
            status = 422
    view = {
        "stores": stores,
        "form": form,
        "errors": errors,
        "result": result,
        "max_weeks": MAX_HORIZON,
        "legend_items": charts.legend_items(),
    }
    template = "partials/store_panel.html" if helpers.is_htmx() else "pages/store.html"
    return render_template(template, **view), status


def _run_store(model: Any, query: StoreForecastQuery) -> dict[str, Any]:
    served = context.forecast_store(query, source="page")
    total = served.extra["total"]
    departments = served.extra["departments"]
    grand = sum(d["total"] for d in departments) or 1.0
    rows = [
        {
            "dept": d["dept"],
            "rank": d["rank"],
            "total": d["total"],
            "share": d["total"] / grand,
            "first": d["predictions"][0]["prediction"] if d["predictions"] else None,
            "cold_start": any(p["cold_start"] for p in d["predictions"]),
        }
        for d in departments
    ]
    history = _store_history(model, query.store, [d["dept"] for d in departments])
    weeks = words.weeks(query.weeks)
    described = f"Store {query.store} total: sales history and the forecast of {weeks}"
    chart = charts.forecast_chart(history, pd.DataFrame(total), description=described) if total else None
    top = pd.DataFrame(rows[:15]).rename(columns={"dept": "Dept"}) if rows else None
    bars = (
        charts.bar_chart(
            top.assign(Dept=top["Dept"].map(lambda d: f"Dept {d}")),
            category="Dept",
            value="total",
            value_title=f"Forecast total over {weeks} ($)",
            width=480,
            description=f"Store {query.store}: departments ranked by forecast total over {weeks}",
        )
        if top is not None
        else None
    )
    name = f"storecast_store{query.store}_{total[0]['week'] if total else 'none'}_{len(total)}w.csv"
    return {
        "store": query.store,
        "weeks": len(total),
        "start": total[0]["week"] if total else None,
        "data_through": served.predictions[0]["data_through"] if served.predictions else None,
        "csv_url": helpers.kept_csv(served.predictions, name),
        "total": total,
        "grand_total": sum(t["prediction"] for t in total),
        "departments": rows,
        "chart": chart,
        "bars": bars,
        "model_version": served.model_version,
    }


def _store_history(model: Any, store: int, departments: list[int]) -> pd.DataFrame:
    """The store's past weekly total for the chart (presentation: the sum of each department's history)."""
    history = getattr(model, "store_history", None)
    if callable(history):
        try:
            return history(store)
        except Exception as error:  # noqa: BLE001 - a chart without history is still useful
            log.debug("no store history for %s: %s", store, error)
    frames = [helpers.history(model, store, dept, weeks=104) for dept in departments]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["date", "weekly_sales"])
    return pd.concat(frames).groupby("date", as_index=False)["weekly_sales"].sum()


# batch
