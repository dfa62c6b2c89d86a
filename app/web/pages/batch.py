"""The batch page: upload a CSV in train.csv or test.csv's columns, see every bad row, download results."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, send_file, url_for

from app.limits import cap_details
from app.web import context, words
from app.web.api.errors import ApiError
from app.web.csv_io import csv_answer, csv_part, decode, parse_csv, validate_batch
from app.web.pages import downloads, helpers

log = logging.getLogger(__name__)

bp = Blueprint("batch_pages", __name__)

BATCH_PREVIEW_ROWS = 10
BATCH_RESULT_ROWS = 50
BATCH_PAGE_PROBLEMS = 500  # problems a page lists; the rest are counted


@bp.route("/batch", methods=["GET", "POST"])
def batch() -> Any:
    """Upload a CSV (train.csv / test.csv columns): preview, errors by line, results to download."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
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
    template = "partials/batch_panel.html" if helpers.is_htmx() else "pages/batch.html"
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
        checked = validate_batch(parsed.rows, parsed.lines)
    except ApiError as error:
        view["message"] = error.message
        return error.status
    if checked.errors:
        # The page lists the first problems; the API answer (and a re-upload) names every one.
        view["errors"] = words.row_errors(
            cap_details(checked.errors, BATCH_PAGE_PROBLEMS), context.forecaster_or_none()
        )
        view["message"] = (
            f"{view['filename']} was not predicted: {checked.bad_rows:,} of {len(parsed.rows):,} rows are "
            "invalid. Fix them and upload again."
        )
        return 422
    extra = parsed.passthrough if parsed.passthrough and parsed.passthrough[0] else None
    summary = {"rows": [], "total": 0.0, "cold_starts": 0}
    to_csv = csv_part(extra)

    def write(chunk: list[dict[str, Any]]) -> str:
        room = BATCH_RESULT_ROWS - len(summary["rows"])
        summary["rows"] += chunk[:room] if room > 0 else []
        summary["total"] += sum(p["prediction"] for p in chunk)
        summary["cold_starts"] += sum(1 for p in chunk if p["cold_start"])
        return to_csv(chunk)

    try:
        served = context.predict_batch(checked.valid, write)
    except ApiError as error:
        view["message"] = error.message
        view["errors"] = words.row_errors(error.details, context.forecaster_or_none())
        return error.status
    token = downloads.keep(csv_answer(served.parts, extra))
    view["result"] = {
        **summary,
        "count": served.count,
        "download": url_for("batch_pages.batch_download", token=token),
        "model_version": served.model_version,
    }
    return 200


@bp.get("/batch/<token>.csv")
def batch_download(token: str) -> Any:
    """The results of an uploaded batch (kept for an hour)."""
    path = downloads.kept_path(token)
    if path is None:
        abort(404, description="These results have expired; upload the file again.")
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"storecast_batch_{dt.date.today()}.csv",
        max_age=0,
    )


# model
