"""Actual weekly sales in, under /api/v1: JSON rows or a CSV in train.csv's format, all or none.

A body that cannot be read (malformed JSON, an unusable CSV header) is a 400; rows that were read and
are refused (a bad cell, an unknown store, an implausible sale, a change to a stored week) are a 422
(app/web/api/errors.py states the rule). Every problem is listed by row and field in one answer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from flask import current_app, request
from pydantic import ValidationError

from app import extensions
from app.limits import parse_json
from app.monitoring import actuals as actual_sales
from app.web.admin_auth import require_admin
from app.web.api import bp
from app.web.api.errors import ApiError, detail, validation_details
from app.web.api.openapi import operation, query_args
from app.web.monitoring_actions import CORRECT_HOW, correction, upload_bounds
from app.web.schemas import ActualRow, ActualsQuery, ActualsRequest, ActualsResponse


def _detail(error: dict[str, Any]) -> dict[str, Any]:
    """{"field", "message", "line"}; CSV messages start with their line, JSON fields name rows[i]."""
    field, line, message = error.get("field") or "body", error.get("line"), error["message"]
    if line and not field.startswith("rows"):
        message = f"line {line}: {message}"
    extra = {"line": line} if line else {}
    if "count" in error:  # app.limits.cap_details' summary of the problems not listed
        extra["count"] = error["count"]
    return {"field": field, "message": message, **extra}


def _refused(details: list[dict[str, Any]], status: int = 422, hint: str = "") -> ApiError:
    problems = sum(d.get("count", 1) for d in details)
    message = f"{problems} problem(s) in the actual sales; nothing was imported"
    return ApiError(status, f"{message} ({hint})" if hint else message, details)


def _json_rows(data: Any, bounds: actual_sales.Bounds) -> pd.DataFrame:
    """JSON rows checked by ActualsRequest (the model the document shows; a bare list is its `rows`) and
    by the one check of actual sales, both in the same answer."""
    if not isinstance(data, (dict, list)):
        raise ApiError(
            400,
            "the body must be a JSON object or a list of rows",
            [detail("body", f"got {type(data).__name__}")],
        )
    try:
        body = ActualsRequest.model_validate({"rows": data} if isinstance(data, list) else data)
    except ValidationError as error:
        details = validation_details(error)
        raw = data.get("rows") if isinstance(data, dict) else data
        try:
            actual_sales.parse_rows(raw, bounds)
        except actual_sales.ActualsError as checked:
            named = {d["field"] for d in details}
            details += [_detail(e) for e in checked.errors if e.get("field") not in named]
            details.sort(key=lambda d: (d["field"] == "details", _row_of(d["field"])))
        raise _refused(details) from None
    return actual_sales.parse_rows([row.model_dump(exclude_unset=True) for row in body.rows], bounds)


def _row_of(field: str) -> int:
    """rows[12].store -> 12 (so details of both checks are listed in row order)."""
    head = field.removeprefix("rows[").partition("]")[0]
    return int(head) if head.isdigit() else -1


@bp.post("/actuals")
@operation(
    "Import actual sales",
    "monitoring",
    description=(
        'Actual weekly sales, so live accuracy can be scored: JSON rows (`{"rows": [...]}` or a bare '
        "list) or a `text/csv` body in train.csv's format (Store, Dept, Date, Weekly_Sales, IsHoliday; "
        "`application/csv`, `text/plain` and a multipart `file` are read the same way). Admin bearer token "
        "required. All rows or none. A body that cannot be read is a 400; rows that were read and are "
        "refused are a 422, every problem in one answer by row and field: malformed values, stores and "
        "departments the production model's data does not know, weeks before its data or past the current "
        "week, sales beyond a multiple of the series' largest week, repeated rows. "
        "Re-sending a stored week's value changes nothing; a row that would change a stored week is "
        "refused (422) unless the request says `correct=true` with a `reason` (and optionally `by`): each "
        "change is then recorded with its old and new values, who and when."
    ),
    body_schema={
        "anyOf": [
            {"$ref": "#/components/schemas/ActualsRequest"},
            {"type": "array", "items": {"$ref": "#/components/schemas/ActualRow"}, "minItems": 1},
        ]
    },
    query=ActualsQuery,
    body_example={"rows": [{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 41231.5}]},
    csv_body="Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,41231.5,FALSE\n",
    ok=ActualsResponse,
    ok_description="Counts of the upsert",
    admin="required",
    errors={
        400: (
            "The body cannot be read: malformed JSON, neither an object nor a list, or a CSV that is empty, "
            "not UTF-8, malformed, or whose header lacks or repeats a column"
        ),
        401: "no admin token was sent",
        403: "the admin token is wrong, or STORECAST_ADMIN_TOKEN is not set on the server",
        422: (
            "A query parameter is unknown or out of range (or `correct=true` without a `reason`), or rows "
            "are refused (nothing is imported): `details` names each by `rows[i].field` (JSON) or CSV "
            "column and `line`: malformed values, unknown stores or departments, weeks outside the model's "
            "calendar, implausible sales, repeated rows, or changes to stored weeks without `correct=true`"
        ),
    },
    extra_models=(ActualsRequest, ActualRow),
)
def actuals() -> Any:
    """Actual weekly sales as JSON rows ({"rows": [...]} or a list) or a CSV body (text/csv)."""
    require_admin()
    content_type = (request.mimetype or "").lower()
    try:
        query = query_args()
        asked = correction("true" if query.correct else None, query.reason, query.by)
        bounds = upload_bounds()
        if content_type in {"text/csv", "application/csv", "text/plain"}:
            parsed = actual_sales.parse_csv(request.get_data(), bounds=bounds)
        elif content_type == "multipart/form-data" and "file" in request.files:
            parsed = actual_sales.parse_csv(
                request.files["file"].read(),
                name=request.files["file"].filename or "file",
                bounds=bounds,
            )
        elif content_type == "application/json":
            parsed = _json_rows(parse_json(request.get_data()), bounds)
        else:
            raise ApiError(
                415,
                "send JSON rows (application/json) or a CSV in train.csv's format (text/csv)",
                [{"field": "Content-Type", "message": f"got {content_type or 'none'}"}],
            )
        with extensions.storage().session() as session:
            result = actual_sales.upsert_actuals(
                session, parsed, model_name=current_app.config["MODEL_NAME"], correction=asked
            )
    except actual_sales.ActualsError as error:
        hint = CORRECT_HOW if isinstance(error, actual_sales.StoredWeekConflict) else ""
        raise _refused([_detail(e) for e in error.errors], error.status, hint) from None
    return result.to_dict()
