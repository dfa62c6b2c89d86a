"""The web layer: JSON API and HTML pages; it calls the core and computes nothing of its own."""

from __future__ import annotations

from typing import Any

from flask import Flask, request


def init_app(app: Flask) -> None:
    """Blueprints (pages, api under /api/v1), error handlers, template helpers, chart warm-up."""
    from app import csrf
    from app.web import api, charts, loop_api, loop_pages, pages

    csrf.exempt(api.bp)
    csrf.exempt(loop_api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(loop_pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(loop_api.bp, url_prefix="/api/v1")
    api.register_error_handlers(app)

    @app.context_processor
    def _model_version() -> dict[str, Any]:
        # What is in memory now; never triggers a registry check or a load.
        holder = app.extensions.get("model_holder")
        forecaster = getattr(holder, "_forecaster", None)
        return {"model_version": getattr(forecaster, "version", None)}

    if not app.testing:
        # Warm vl-convert in the worker that will render (after any gunicorn fork), off the request path.
        # API-only workers never pay for it.
        @app.before_request
        def _warm_charts() -> None:
            if not request.path.startswith(("/api/", "/static/", "/metrics")):
                charts.warm(background=True)
