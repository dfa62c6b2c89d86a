"""The forecast page for store planners: one week or 2-52 weeks of one store-department, its form's
HTMX partials, and the download of what it showed.

An HTMX request (HX-Request header) gets the panel partial; a plain request gets the whole page.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from pydantic import ValidationError

from app.forecasting.inputs import COVARIATES, MAX_HORIZON
from app.forecasting.intervals import bucket_sort_key
from app.serving import predictions
from app.web import charts, context, words
from app.web.api.errors import ApiError
from app.web.csv_io import PREDICTION_COLUMNS, predictions_csv, quantile_columns
from app.web.errors import form_errors
from app.web.pages import downloads, helpers, why
from app.web.schemas import (
    DEFAULT_WEEKS,
    ForecastForm,
    ForecastRequest,
    PredictRequest,
    clean_form,
)

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

FORM_FIELDS = ("store", "dept", "date", "weeks", "is_holiday", "service_level", *COVARIATES)
SERVICE_LEVELS = (80, 90, 95, 98)  # the forecast form's choices of "stock to this number"


@bp.app_template_filter("by_weeks_ahead")
def by_weeks_ahead(figures: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """A {bucket: figures} mapping as pairs ordered by weeks ahead ("5-13" before "14-26"): stored JSON
    comes back with its keys sorted as text."""
    return sorted((figures or {}).items(), key=lambda item: bucket_sort_key(item[0]))


@bp.route("/", methods=["GET", "POST"])
def forecast() -> Any:
    """The forecast form: one week (a result card) or 2-52 weeks (chart, table, CSV download)."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
    stores = helpers.store_options(model)
    default_start = predictions.default_start(model)
    args = request.args
    # A link from another page (a store's department, say) names the series and its weeks: it is run.
    linked = request.method == "GET" and bool(args.get("dept") and (args.get("date") or args.get("start")))
    if request.method == "GET" and not linked:
        store = args.get("store") or (str(stores[0]) if stores else "")
        form = {
            "store": store,
            "dept": "",
            "date": default_start.isoformat(),
            "weeks": "1",
            "is_holiday": "auto",
        }
        departments = helpers.dept_options(model, store)
        form["dept"] = args.get("dept") or (str(departments[0]) if departments else "")
        view = _forecast_context(model, stores, departments, form, {}, None)
        return render_template("pages/forecast.html", **view)

    given = {**args, "date": args.get("date") or args.get("start", "")} if linked else request.form
    form = {name: (given.get(name) or "").strip() for name in FORM_FIELDS}
    form["is_holiday"] = form["is_holiday"] or "auto"
    if linked:
        form["weeks"] = form["weeks"] or "1"
    departments = helpers.dept_options(model, form["store"])
    errors: dict[str, str] = {}
    result = None
    status = 200
    if request.form.get("action") == "refresh":  # no-JS: reload the department list for the store
        if departments and form["dept"] not in {str(d) for d in departments}:
            form["dept"] = str(departments[0])
    else:
        try:
            data = ForecastForm.model_validate(clean_form(form, FORM_FIELDS))
        except ValidationError as error:
            errors = words.form_errors(error, model)
        else:
            try:
                result = _run_forecast(model, data)
            except ApiError as error:
                errors = words.answer_errors(error.details, error.message, model)
                if error.status == 503:
                    return helpers.no_model()
        if errors:
            status = 422
    view = _forecast_context(model, stores, departments, form, errors, result)
    template = "partials/forecast_panel.html" if helpers.is_htmx() else "pages/forecast.html"
    return render_template(template, **view), status


def _run_forecast(model: Any, data: ForecastForm) -> dict[str, Any]:
    """The forecast, explained (components, last year's sales), with the what-if of the covariates set."""
    covariates = data.given()
    # a single week is a point at the end of the history: a year of it keeps the point visible
    history = helpers.history(model, data.store, data.dept, weeks=52 if data.weeks == 1 else 104)
    quantiles = data.quantiles()
    if data.weeks == 1:
        served = context.predict([data], source="page", explain=True, quantiles=quantiles)
        predictions = served.predictions
    else:
        req = ForecastRequest(
            store=data.store,
            dept=data.dept,
            start=data.date,
            weeks=data.weeks,
            covariates=[covariates] * data.weeks if covariates else None,
            quantiles=quantiles,
        )
        served = context.forecast(req, source="page", explain=True)
        predictions = served.predictions
    total = sum(p["prediction"] for p in predictions)
    start = dt.date.fromisoformat(predictions[0]["week"])
    parts = why.totals(predictions)
    sentence = why.sentence(parts) if parts else None
    weeks = words.weeks(data.weeks)
    described = f"Store {data.store}, dept {data.dept}: sales history and the forecast of {weeks}"
    common = {
        "chart": charts.forecast_chart(
            history, helpers.frame(predictions), description=described, last_year=True
        ),
        "parts": parts,
        "sentence": sentence,
        "waterfall": why.waterfall(parts, f"Why this number: {sentence}") if parts else None,
        "what_if": why.sensitivity(
            context.what_if(data.store, data.dept, start, data.weeks, covariates, total), total
        ),
        "model_version": served.model_version,
        "service_level": data.service_level,
        "stock_key": quantile_columns(quantiles)[-1] if quantiles else None,
    }
    if data.weeks == 1:
        return {"mode": "single", "prediction": predictions[0], **common}
    name = f"storecast_store{data.store}_dept{data.dept}_{predictions[0]['week']}_{data.weeks}w.csv"
    return {
        "mode": "multi",
        "predictions": predictions,
        "total": total,
        "csv_url": helpers.kept_csv(
            why.csv_rows(predictions),
            name,
            (*why.CSV_COLUMNS, *quantile_columns(quantiles)[len(PREDICTION_COLUMNS) :]),
        ),
        **common,
    }


@bp.get("/download/<token>/<filename>")
def download(token: str, filename: str) -> Any:
    """A forecast or store page's results as CSV: the very rows that page showed (kept for an hour)."""
    text = downloads.fetch(token) if downloads.FILENAME.match(filename) else None
    if text is None:
        abort(404, description="This download has expired; run the forecast again.")
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response


def _model_inputs(model: Any, store: Any, dept: Any, date: Any) -> dict[str, Any]:
    """The covariates the model would use for this store-department-week (the form's placeholders).

    Asks the Forecaster (nothing is computed here); this prediction is not served, so not logged.
    """
    try:
        row = PredictRequest.model_validate({"store": store, "dept": dept, "date": date})
        return dict(model.predict_rows([row.to_row()])[0].inputs)
    except Exception as error:  # noqa: BLE001 - no placeholders is fine: the inputs say "auto"
        log.debug("no placeholder inputs for %s/%s/%s: %s", store, dept, date, error)
        return {}


@bp.get("/partials/covariates")
def covariates_partial() -> Any:
    """The covariate inputs with the model's values as placeholders (HTMX, when store/dept/week change)."""
    model = context.forecaster_or_none()
    args = request.args
    placeholders = (
        _model_inputs(model, args.get("store"), args.get("dept"), args.get("date")) if model else {}
    )
    form = {name: args.get(name, "") for name in COVARIATES}
    return render_template(
        "partials/covariates_body.html",
        covariates=helpers.covariate_fields(),
        placeholders=placeholders,
        placeholder_week=args.get("date") if placeholders else None,
        form=form,
        errors={},
    )


def _forecast_context(
    model: Any,
    stores: list[int],
    departments: list[int],
    form: dict[str, str],
    errors: dict[str, str],
    result: dict[str, Any] | None,
) -> dict[str, Any]:
    if result and result["mode"] == "single":
        placeholders = result["prediction"]["inputs"]
    elif result and result.get("predictions"):
        placeholders = result["predictions"][0]["inputs"]
    else:
        placeholders = _model_inputs(model, form.get("store"), form.get("dept"), form.get("date"))
    return {
        "stores": stores,
        "departments": departments,
        "form": form,
        "errors": errors,
        "result": result,
        "covariates": helpers.covariate_fields(),
        "covariates_open": any(form.get(name) or name in errors for name in COVARIATES),
        "placeholders": placeholders,
        "placeholder_week": form.get("date") if placeholders else None,
        "max_weeks": MAX_HORIZON,
        "service_levels": SERVICE_LEVELS,
        "origin": getattr(model, "origin", None),
        "first_week": predictions.default_start(model),
        "legend_items": charts.legend_items(last_year=bool(result)),
    }


@bp.get("/partials/departments")
def departments_partial() -> Any:
    """The department <select> for a store (HTMX swaps it in when the store changes)."""
    model = context.forecaster_or_none()
    store = request.args.get("store", "")
    departments = helpers.dept_options(model, store) if model is not None else []
    form = {"dept": str(departments[0]) if departments else ""}
    return render_template("partials/dept_field.html", departments=departments, form=form, errors={})


@bp.get("/forecast.csv")
def forecast_csv() -> Any:
    """A forecast from a query string as CSV, for links and scripts (it forecasts and logs anew; the
    forecast page's own download serves the rows the page showed instead)."""
    args = {k: v for k, v in request.args.items() if v != ""}
    covariates = {k: args.pop(k) for k in list(args) if k in COVARIATES or k == "is_holiday"}
    try:
        weeks = int(args.get("weeks", DEFAULT_WEEKS))
    except ValueError:
        weeks = -1
    try:
        req = ForecastRequest.model_validate(
            {**args, "covariates": [covariates] * weeks if covariates and 0 < weeks <= MAX_HORIZON else None}
        )
    except ValidationError as error:
        message = "; ".join(f"{k}: {v}" for k, v in form_errors(error).items())
        return render_template("error.html", status=422, title="Invalid forecast", message=message), 422
    served = context.forecast(req, source="page")
    columns = quantile_columns(req.quantiles)
    response = Response(predictions_csv(served.predictions, columns=columns), mimetype="text/csv")
    name = f"storecast_store{req.store}_dept{req.dept}_{served.predictions[0]['week']}_{req.weeks}w.csv"
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response


# store
