"""The JSON API under /api/v1: one blueprint, one error type (errors.ApiError) and one hook.

Each module holds the routes of one resource and registers them on `bp`. Requests are validated by
the models of app/web/schemas (the same models generate /openapi.json, see openapi.py); every error
is {"error", "details": [{"field", "message"}]}, with the status rule of errors.py; every prediction
served is logged.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.web import context
from app.web.headers import add_missing

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.after_app_request
def _api_headers(response: Response) -> Response:
    """Every answer under /api/v1 names its request (X-Request-ID) and is never cached: the app's hook,
    since a path no route matches (a 404, a 405) never reaches the blueprint's own."""
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        add_missing(response.headers, [("X-Request-ID", context.request_id()), ("Cache-Control", "no-store")])
    return response


# The route modules register on `bp`, so they are imported once it exists.
from app.web.api import (  # noqa: E402
    actuals,
    forecast_runs,
    health,
    models,
    monitoring,
    openapi,
    predictions,
    totals,
    training_runs,
)

__all__ = [
    "actuals",
    "bp",
    "forecast_runs",
    "health",
    "models",
    "monitoring",
    "openapi",
    "predictions",
    "totals",
    "training_runs",
]
