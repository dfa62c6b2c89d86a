"""The API's one error type and its one JSON shape: {"error": message, "details": [{"field", "message"}]}.

One rule says which status a refused request gets:
- 400: the request could not be read: malformed JSON or CSV, a body that is not a JSON object (or a
  list where one is allowed), a CSV whose header or encoding is unusable;
- 415: a content type the endpoint does not read;
- 422: it was read but is invalid: a field outside its schema (a missing store, a week beyond the
  horizon, an unknown query parameter) or refused by the domain (a store the model does not know,
  an implausible sale, a change to a stored week without `correct=true`).
Views raise ApiError (or let a pydantic ValidationError through: 422); app/web/errors.py renders both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, jsonify
from pydantic import ValidationError

from app.limits import MAX_DETAILS, InputRejected, cap_details, problem


class ApiError(InputRejected):
    """Raise anywhere in a request to answer with an error JSON (API) or an error page (HTML).

    The web layer's name for app.limits.InputRejected: the services below raise that one, and the
    same handler renders both.
    """

    def __init__(
        self,
        status: int,
        message: str,
        details: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        limit: int = MAX_DETAILS,
    ) -> None:
        super().__init__(status, message, details, limit)
        self.headers = headers or {}


detail = problem


def api_error(
    status: int, message: str, details: Iterable[dict[str, Any]] | None = None, limit: int = MAX_DETAILS
) -> Response:
    """The one JSON error shape: {"error": message, "details": [{"field", "message"}, ...]}.

    Details are capped (app.limits.MAX_DETAILS unless the error says otherwise, then a count of the
    rest) so that no input, however wrong, makes a large error response.
    """
    response = jsonify({"error": message, "details": cap_details(details or [], limit)})
    response.status_code = status
    return response


def _loc_to_field(loc: Sequence[Any], prefix: str = "") -> str:
    field = prefix
    for part in loc:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            field += f".{part}" if field else str(part)
    return field or "body"


def error_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(noise)
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return message


def validation_details(error: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic errors as [{"field": "rows[3].date", "message": ...}], in input order."""
    return [
        detail(_loc_to_field(e["loc"], prefix), error_message(e)) for e in error.errors(include_url=False)
    ]


def forecast_error_detail(error: Exception) -> dict[str, Any]:
    """A core ForecastError (unknown store, week out of range...) as a field error."""
    field = getattr(error, "field", None) or "body"
    message = getattr(error, "message", None) or str(error)
    return detail(str(field), str(message))
