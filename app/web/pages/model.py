"""The production model's card and the API's documentation page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template

from app import extensions
from app.web import context
from app.web.api.openapi import openapi_document
from app.web.model_card import model_card_context
from app.web.pages import helpers
from app.web.pages.api_docs import docs_context

log = logging.getLogger(__name__)

bp = Blueprint("model_pages", __name__)


@bp.get("/model")
def model_page() -> Any:
    """The production model's card."""
    model = context.forecaster_or_none()
    if model is None:
        return helpers.no_model()
    return render_template(
        "pages/model.html",
        card={**model_card_context(model), "for_planners": True},
        staleness=extensions.staleness(),
    )


@bp.get("/api/docs")
def api_docs() -> Any:
    """A readable page for the OpenAPI document, rendered here (no Swagger UI, no CDN)."""
    return render_template("pages/api_docs.html", **docs_context(openapi_document()))
