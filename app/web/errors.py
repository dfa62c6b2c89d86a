"""Every error the app answers: the API's JSON shape (app/web/api/errors.py) under /api, an HTML page
elsewhere. Views raise ApiError (or let a validation error through); the handlers here render every
error, so a script sees one error shape and bad input never surfaces as a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from pydantic import ValidationError
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestTimeout

from app.limits import MAX_DETAILS, InputRejected, cap_details
from app.web.api.errors import api_error, detail, error_message, validation_details

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def form_errors(error: ValidationError) -> dict[str, str]:
    """Pydantic errors keyed by top-level form field, for inline messages next to each input."""
    errors: dict[str, str] = {}
    for e in error.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else "form"
        errors.setdefault(name, error_message(e))
    return errors


def wants_json() -> bool:
    return request.path.startswith(API_PREFIX) and not request.path.startswith("/api/docs")


TITLES = {403: "Forbidden", 503: "Service unavailable"}


def error_response(error: InputRejected) -> Response:
    """The one rendering of a refused request: the JSON shape under /api, the error page elsewhere."""
    if wants_json():
        response = api_error(error.status, error.message, error.details, getattr(error, "limit", MAX_DETAILS))
    else:
        body, status = _html_error(error.status, TITLES.get(error.status, "Request failed"), error.message)
        response = Response(body, status=status, mimetype="text/html")
    response.headers.update(getattr(error, "headers", {}))
    return response


def _html_error(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def _expired_form_notice() -> tuple[str, int, dict[str, str]]:
    """An htmx form refused for its CSRF token: 400s are swapped into the form's panel (they carry
    inline errors), so send the page's #flash notice in place of the panel's content instead."""
    message = escape("Your session has expired: reload the page and try again.")
    body = f'<div id="flash" class="notice danger" role="alert">{message}</div>'
    return body, 400, {"HX-Retarget": "#flash", "HX-Reswap": "outerHTML"}


# What to do with a file past the upload limit, by path; the rest are told to split it.
TOO_LARGE_HINTS = {
    "/monitoring/actuals": "import it with `flask --app wsgi actuals import FILE`, or split it",
    "/api/v1/actuals": "import it with `flask --app wsgi actuals import FILE`, or split it",
    "/batch": "split it: a batch is at most MAX_BATCH_ROWS rows",
}


def _too_large() -> Any:
    """413 naming the limit and what to do: JSON for the API, an inline notice for htmx, else a page."""
    limit = request.max_content_length or 0
    message = f"the file is larger than the upload limit of {limit / 2**20:g} MB"
    hint = TOO_LARGE_HINTS.get(request.path, "send less at a time")
    if wants_json():
        return api_error(413, message, [detail("body", hint)])
    if request.headers.get("HX-Request"):
        notice = escape(f"{message}: {hint}.")
        return f'<div class="notice danger" role="alert" data-testid="too-large">{notice}</div>', 413
    return _html_error(413, "File too large", f"{message}: {hint}.")


def register_error_handlers(app: Flask) -> None:
    """JSON errors under /api, a styled HTML page elsewhere; a 500 never leaks a traceback."""

    app.register_error_handler(InputRejected, error_response)

    @app.errorhandler(ValidationError)
    def _validation(error: ValidationError) -> Any:
        if wants_json():
            return api_error(422, "invalid request", validation_details(error))
        messages = (f"{e['field']}: {e['message']}" for e in cap_details(validation_details(error), 10))
        return _html_error(422, "Invalid input", "; ".join(messages))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        if isinstance(error, ClientDisconnected) and isinstance(error.__context__, TimeoutError):
            error = RequestTimeout("the request body stalled: send it without pauses")  # a slow client
        status = error.code or 500
        if status == 413:
            return _too_large()
        if wants_json():
            message = {
                404: "not found: no such endpoint",
                405: f"method {request.method} not allowed",
            }.get(status, (error.description or error.name).rstrip("."))
            response = api_error(status, message)
            if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response
        if isinstance(error, CSRFError) and request.headers.get("HX-Request"):
            return _expired_form_notice()
        return _html_error(status, error.name, error.description or "")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return api_error(500, "internal error")
        return _html_error(500, "Something went wrong", "The error was logged; please try again.")
