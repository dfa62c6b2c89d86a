"""The HTML pages for store planners (Jinja2, HTMX partial swaps; every form also works as a plain post).

An HTMX request (HX-Request header) gets the panel partial; a plain request gets the whole page.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd
from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from pydantic import ValidationError

from app.forecasting.intervals import bucket_sort_key
from app.limits import cap_details
from app.registry import versions
from app.serving import predictions
from app.web import charts, context, downloads
from app.web.apidoc import openapi_document
from app.web.csv_io import decode, parse_csv, predictions_csv, validate_batch
from app.web.docs import docs_context
from app.web.errors import ApiError, form_errors
from app.web.model_card import model_card_context
from app.web.schemas import (
    COVARIATES,
    DEFAULT_WEEKS,
    MAX_WEEKS,
    ForecastForm,
    ForecastRequest,
    PredictRequest,
    StoreForecastQuery,
    clean_form,
)

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)


@bp.app_template_filter("by_weeks_ahead")
def by_weeks_ahead(figures: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """A {bucket: figures} mapping as pairs ordered by weeks ahead ("5-13" before "14-26"): stored JSON
    comes back with its keys sorted as text."""
    return sorted((figures or {}).items(), key=lambda item: bucket_sort_key(item[0]))


FORM_FIELDS = ("store", "dept", "date", "weeks", "is_holiday", *COVARIATES)
BATCH_PREVIEW_ROWS = 10
BATCH_RESULT_ROWS = 50

__all__ = ["bp", "model_card_context"]


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def _no_model() -> tuple[str, int]:
    return render_template("pages/no_model.html"), 503


def _store_options(model: Any) -> list[int]:
    return [int(s) for s in model.stores()]


def _dept_options(model: Any, store: Any) -> list[int]:
    try:
        return [int(d) for d in model.departments(int(store))]
    except (TypeError, ValueError, LookupError):
        return []
    except Exception as error:  # noqa: BLE001 - ForecastError (unknown store): an empty list, the form says why
        log.debug("no departments for store %r: %s", store, error)
        return []


def _covariate_fields() -> list[dict[str, Any]]:
    return [
        {"name": name, "label": label, "unit": unit, "min": low, "max": high, "description": description}
        for name, (label, unit, low, high, description) in COVARIATES.items()
    ]


def _frame(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(predictions)


def _history(model: Any, store: int, dept: int, weeks: int = 104) -> pd.DataFrame:
    try:
        return model.history(store, dept, weeks=weeks)
    except Exception as error:  # noqa: BLE001 - a chart without history is still useful
        log.debug("no history for %s/%s: %s", store, dept, error)
        return pd.DataFrame(columns=["date", "weekly_sales"])


# forecast
@bp.route("/", methods=["GET", "POST"])
def forecast() -> Any:
    """The forecast form: one week (a result card) or 2-52 weeks (chart, table, CSV download)."""
    model = context.forecaster_or_none()
    if model is None:
        return _no_model()
    stores = _store_options(model)
    default_start = predictions.default_start(model)
    if request.method == "GET":
        store = request.args.get("store") or (str(stores[0]) if stores else "")
        form = {
            "store": store,
            "dept": "",
            "date": default_start.isoformat(),
            "weeks": "1",
            "is_holiday": "auto",
        }
        departments = _dept_options(model, store)
        form["dept"] = request.args.get("dept") or (str(departments[0]) if departments else "")
        view = _forecast_context(model, stores, departments, form, {}, None)
        return render_template("pages/forecast.html", **view)

    form = {name: (request.form.get(name) or "").strip() for name in FORM_FIELDS}
    form["is_holiday"] = form["is_holiday"] or "auto"
    departments = _dept_options(model, form["store"])
    errors: dict[str, str] = {}
    result = None
    status = 200
    if request.form.get("action") == "refresh":  # no-JS: reload the department list for the store
        if departments and form["dept"] not in {str(d) for d in departments}:
            form["dept"] = str(departments[0])
    else:
        try:
            data = ForecastForm.model_validate(clean_form(request.form, FORM_FIELDS))
        except ValidationError as error:
            errors = form_errors(error)
        else:
            try:
                result = _run_forecast(model, data)
            except ApiError as error:
                errors = {d.get("field", "form"): d["message"] for d in error.details} or {
                    "form": error.message
                }
                if error.status == 503:
                    return _no_model()
        if errors:
            status = 422
    view = _forecast_context(model, stores, departments, form, errors, result)
    template = "partials/forecast_panel.html" if _is_htmx() else "pages/forecast.html"
    return render_template(template, **view), status


def _run_forecast(model: Any, data: ForecastForm) -> dict[str, Any]:
    if data.weeks == 1:
        served = context.predict([data], source="page")
        return {"mode": "single", "prediction": served.predictions[0], "model_version": served.model_version}
    covariates = data.given()
    req = ForecastRequest(
        store=data.store,
        dept=data.dept,
        start=data.date,
        weeks=data.weeks,
        covariates=[covariates] * data.weeks if covariates else None,
    )
    served = context.forecast(req, source="page")
    predictions = served.predictions
    history = _history(model, data.store, data.dept)
    described = f"Store {data.store}, dept {data.dept}: sales history and the forecast of {data.weeks} weeks"
    svg = charts.forecast_chart(history, _frame(predictions), description=described) if predictions else None
    name = f"storecast_store{data.store}_dept{data.dept}_{predictions[0]['week']}_{data.weeks}w.csv"
    return {
        "mode": "multi",
        "predictions": predictions,
        "chart": svg,
        "total": sum(p["prediction"] for p in predictions),
        "csv_url": _kept_csv(predictions, name),
        "model_version": served.model_version,
    }


def _kept_csv(predictions: list[dict[str, Any]], name: str) -> str:
    """The download link of the predictions the page shows (kept, not recomputed on download)."""
    return url_for("pages.download", token=downloads.keep(predictions_csv(predictions)), filename=name)


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
        covariates=_covariate_fields(),
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
        "covariates": _covariate_fields(),
        "covariates_open": any(form.get(name) or name in errors for name in COVARIATES),
        "placeholders": placeholders,
        "placeholder_week": form.get("date") if placeholders else None,
        "max_weeks": MAX_WEEKS,
        "origin": getattr(model, "origin", None),
        "first_week": predictions.default_start(model),
        "legend_items": charts.legend_items(),
    }


@bp.get("/partials/departments")
def departments_partial() -> Any:
    """The department <select> for a store (HTMX swaps it in when the store changes)."""
    model = context.forecaster_or_none()
    store = request.args.get("store", "")
    departments = _dept_options(model, store) if model is not None else []
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
            {**args, "covariates": [covariates] * weeks if covariates and 0 < weeks <= MAX_WEEKS else None}
        )
    except ValidationError as error:
        message = "; ".join(f"{k}: {v}" for k, v in form_errors(error).items())
        return render_template("error.html", status=422, title="Invalid forecast", message=message), 422
    served = context.forecast(req, source="page")
    response = Response(predictions_csv(served.predictions), mimetype="text/csv")
    name = f"storecast_store{req.store}_dept{req.dept}_{served.predictions[0]['week']}_{req.weeks}w.csv"
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response


# store
@bp.get("/store")
def store_page() -> Any:
    """A whole store: departments ranked by forecast, the store total chart."""
    model = context.forecaster_or_none()
    if model is None:
        return _no_model()
    stores = _store_options(model)
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
            errors = form_errors(error)
        else:
            try:
                result = _run_store(model, query)
            except ApiError as error:
                errors = {d.get("field", "form"): d["message"] for d in error.details} or {
                    "form": error.message
                }
        if errors:
            status = 422
    view = {
        "stores": stores,
        "form": form,
        "errors": errors,
        "result": result,
        "max_weeks": MAX_WEEKS,
        "legend_items": charts.legend_items(),
    }
    template = "partials/store_panel.html" if _is_htmx() else "pages/store.html"
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
    described = f"Store {query.store} total: sales history and the forecast of {query.weeks} weeks"
    chart = charts.forecast_chart(history, pd.DataFrame(total), description=described) if total else None
    top = pd.DataFrame(rows[:15]).rename(columns={"dept": "Dept"}) if rows else None
    bars = (
        charts.bar_chart(
            top.assign(Dept=top["Dept"].map(lambda d: f"Dept {d}")),
            category="Dept",
            value="total",
            value_title=f"Forecast total over {query.weeks} weeks ($)",
            width=480,
            description=f"Store {query.store}: departments ranked by forecast total over {query.weeks} weeks",
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
        "csv_url": _kept_csv(served.predictions, name),
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
    frames = [_history(model, store, dept, weeks=104) for dept in departments]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["date", "weekly_sales"])
    return pd.concat(frames).groupby("date", as_index=False)["weekly_sales"].sum()


# batch
@bp.route("/batch", methods=["GET", "POST"])
def batch() -> Any:
    """Upload a CSV (train.csv / test.csv columns): preview, errors by line, results to download."""
    model = context.forecaster_or_none()
    if model is None:
        return _no_model()
    view: dict[str, Any] = {
        "limit": int(current_app.config["MAX_BATCH_ROWS"]),
        "errors": [],
        "message": None,
        "preview": None,
        "result": None,
        "filename": None,
    }
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            view["message"] = "Choose a CSV file to upload."
            status = 422
        else:
            view["filename"] = upload.filename
            status = _run_batch(upload.read(), view)
    template = "partials/batch_panel.html" if _is_htmx() else "pages/batch.html"
    return render_template(template, **view), status


def _run_batch(data: bytes, view: dict[str, Any]) -> int:
    try:
        parsed = parse_csv(decode(data), int(view["limit"]))
    except ApiError as error:
        view["message"] = error.message
        view["errors"] = error.details
        return error.status
    view["preview"] = {
        "columns": parsed.columns,
        "rows": [
            {"line": line, **row, **extra}
            for line, row, extra in zip(
                parsed.lines[:BATCH_PREVIEW_ROWS],
                parsed.rows[:BATCH_PREVIEW_ROWS],
                parsed.passthrough[:BATCH_PREVIEW_ROWS],
                strict=True,
            )
        ],
        "count": len(parsed.rows),
    }
    try:
        valid, errors = validate_batch(parsed.rows, parsed.lines)
    except ApiError as error:
        view["message"] = error.message
        return error.status
    if errors:
        view["errors"] = cap_details(errors)
        bad = len({e.get("row") for e in errors})
        view["message"] = (
            f"{view['filename']} was not predicted: {bad} of {len(parsed.rows)} rows are invalid. "
            "Fix them and upload again."
        )
        return 422
    try:
        served = context.predict(valid, source="batch")
    except ApiError as error:
        view["message"] = error.message
        view["errors"] = error.details
        return error.status
    extra = parsed.passthrough if parsed.passthrough and parsed.passthrough[0] else None
    token = downloads.keep(predictions_csv(served.predictions, extra))
    predictions = served.predictions
    view["result"] = {
        "count": len(predictions),
        "rows": predictions[:BATCH_RESULT_ROWS],
        "total": sum(p["prediction"] for p in predictions),
        "cold_starts": sum(1 for p in predictions if p["cold_start"]),
        "download": url_for("pages.batch_download", token=token),
        "model_version": served.model_version,
    }
    return 200


@bp.get("/batch/<token>.csv")
def batch_download(token: str) -> Any:
    """The results of an uploaded batch (kept for an hour)."""
    text = downloads.fetch(token)
    if text is None:
        abort(404, description="These results have expired; upload the file again.")
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=storecast_batch_{dt.date.today()}.csv"
    return response


# model
@bp.get("/model")
def model_page() -> Any:
    """The production model's card."""
    model = context.forecaster_or_none()
    if model is None:
        return _no_model()
    staleness = versions.staleness(
        context.storage(), current_app.config["MODEL_NAME"], int(current_app.config["STALE_AFTER_WEEKS"])
    )
    return render_template("pages/model.html", card=model_card_context(model), staleness=staleness)


@bp.get("/api/docs")
def api_docs() -> Any:
    """A readable page for the OpenAPI document, rendered here (no Swagger UI, no CDN)."""
    return render_template("pages/api_docs.html", **docs_context(openapi_document()))
