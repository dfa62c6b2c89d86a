"""Totals above a store, drilling down: the whole chain -> a department across stores -> a store (the
store page) -> one store's department (the series page)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from flask import Blueprint, render_template, request
from pydantic import ValidationError

from app.forecasting.inputs import MAX_HORIZON
from app.serving import predictions
from app.web import charts, context, words
from app.web.api.errors import ApiError
from app.web.api.totals import TOTAL_CSV_COLUMNS
from app.web.pages import helpers
from app.web.schemas import DEFAULT_WEEKS, DepartmentTotalQuery, TotalForecastQuery

bp = Blueprint("totals_pages", __name__)
TOP_BARS = 15


def _form(model: Any) -> dict[str, str]:
    return {
        "start": request.args.get("start", "").strip() or predictions.default_start(model).isoformat(),
        "weeks": request.args.get("weeks", "").strip() or str(DEFAULT_WEEKS),
    }


@bp.get("/chain")
def chain_page() -> Any:
    """The whole chain: its total per week with the band, and its departments ranked."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
    form = _form(model)
    result, errors = _answer(model, TotalForecastQuery, form, None)
    view = _view(form, errors, result, model)
    return render_template("pages/chain.html", **view), 422 if errors else 200


@bp.get("/chain/departments/<int:dept>")
def department_page(dept: int) -> Any:
    """One department across every store: its total per week with the band, and its stores ranked."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
    form = _form(model)
    result, errors = _answer(model, DepartmentTotalQuery, form, dept)
    view = _view(form, errors, result, model) | {"dept": dept}
    return render_template("pages/department.html", **view), 422 if errors else 200


def _view(form: dict[str, str], errors: dict[str, str], result: Any, model: Any) -> dict[str, Any]:
    return {
        "form": form,
        "errors": errors,
        "result": result,
        "max_weeks": MAX_HORIZON,
        "departments": model.all_departments(),
        "legend_items": charts.legend_items(),
    }


def _answer(
    model: Any, schema: type[TotalForecastQuery], form: dict[str, str], dept: int | None
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The total's answer shaped for the page, or the form's errors in words."""
    values = {k: v for k, v in form.items() if v} | ({"dept": dept} if dept is not None else {})
    try:
        query = schema.model_validate(values)
    except ValidationError as error:
        errors = words.form_errors(error, model)
    else:
        try:
            return _shaped(model, query, dept), {}
        except ApiError as error:
            errors = words.answer_errors(error.details, error.message, model)
    if "date" in errors:  # the form calls its week `start` (the API's alias of `date`)
        errors.setdefault("start", errors.pop("date"))
    if "dept" in errors:  # the department is the page's address, not a field: said above the form
        errors.setdefault("form", errors.pop("dept").capitalize())
    return None, errors


def _shaped(model: Any, query: TotalForecastQuery, dept: int | None) -> dict[str, Any]:
    level = "chain" if dept is None else "department"
    answer = context.forecast_total(level, dept, query.start, query.weeks)
    weeks = answer["predictions"]
    named = "The whole chain" if dept is None else f"Department {dept} across all stores"
    history = model.total_history(level, dept)
    chart = charts.forecast_chart(
        history,
        pd.DataFrame(weeks),
        description=f"{named}: weekly sales history and the forecast of {words.weeks(len(weeks))}",
    )
    parts = answer["parts"]
    part_name = "Dept" if dept is None else "Store"
    key = "dept" if dept is None else "store"
    top = pd.DataFrame(parts[:TOP_BARS])
    bars = None
    if len(top):
        top["label"] = [f"{part_name} {k}" for k in top[key]]
        bars = charts.bar_chart(
            top,
            category="label",
            value="total",
            value_title=f"Forecast over {words.weeks(len(weeks))} ($)",
            width=480,
            description=f"{named}: {'departments' if dept is None else 'stores'} ranked by forecast total",
        )
    slug = "chain" if dept is None else f"dept{dept}"
    name = f"storecast_{slug}_{answer['start']}_{len(weeks)}w.csv"
    return {
        "level": level,
        "named": named,
        "start": answer["start"],
        "weeks": len(weeks),
        "data_through": answer["data_through"],
        "total": answer["total"],
        "predictions": weeks,
        "parts": parts,
        "chart": chart,
        "bars": bars,
        "csv_url": helpers.kept_csv(weeks, name, columns=TOTAL_CSV_COLUMNS),
        "model_version": answer["model_version"],
    }
