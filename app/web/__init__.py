"""The web layer: JSON API and HTML pages over the services; it computes nothing of its own."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFProtect

from app.jobs.scheduler import start_background_scheduler
from app.web import api, context, errors, pages, request_metrics, security, svg, words
from app.web.admin_auth import last_line, path_name, without_paths
from app.web.sessions import CookieSessions

# Every state-changing form post carries a token; the JSON API is exempt (bearer tokens guard it).
csrf = CSRFProtect()

LARGE_UPLOADS = ("/api/v1/actuals", "/monitoring/actuals")


def _upload_limit() -> None:
    """Actual-sales uploads may be a whole train.csv (MAX_ACTUALS_BYTES); the rest MAX_CONTENT_LENGTH."""
    if request.path in LARGE_UPLOADS:
        request.max_content_length = int(current_app.config["MAX_ACTUALS_BYTES"])


def init_app(app: Flask) -> None:
    """Blueprints (pages, api under /api/v1), error handlers, response headers, request metrics."""
    app.session_interface = CookieSessions()
    csrf.init_app(app)
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.health.metrics_bp)
    for blueprint in pages.BLUEPRINTS:
        app.register_blueprint(blueprint)
    errors.register_error_handlers(app)
    security.init_app(app)  # response headers; a locked database answers 503
    request_metrics.init_app(app, app.extensions["request_log"])
    # First of all before-request hooks: Flask-WTF's CSRF check parses the form, under this limit.
    app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)
    app.after_request(context.version_headers)
    # Pages show artifact and data names and a stored error's last line, never server paths.
    app.add_template_filter(path_name, "path_name")
    app.add_template_filter(last_line, "last_line")
    app.add_template_filter(without_paths, "without_paths")
    # Dates, moments and horizon buckets in a reader's words on every page.
    app.add_template_filter(words.day, "day")
    app.add_template_filter(words.when, "when")
    app.add_template_filter(words.weeks_ahead, "weeks_ahead")
    app.add_template_filter(words.weeks, "weeks")

    @app.context_processor
    def _model_version() -> dict[str, Any]:
        # What is in memory now; never triggers a registry check or a load.
        holder = app.extensions["model_holder"]
        return {"model_version": holder.version, "model_not_production": holder.not_production()}

    if not app.testing:
        # Warm vl-convert in the worker that will render (after any gunicorn fork), off the request path.
        # API-only workers never pay for it.
        @app.before_request
        def _warm_charts() -> None:
            if not request.path.startswith(("/api/", "/static/", "/metrics")):
                svg.warm(background=True)

    if app.config.get("SCHEDULER_ENABLED") and not app.testing:
        # Started on the first request, so under gunicorn's preload it runs in each worker (after fork),
        # never in the master; the jobs' slot claims keep each interval's run unique.
        started = {"done": False}

        @app.before_request
        def _start_scheduler() -> None:
            if not started["done"]:
                started["done"] = True
                app.extensions["monitoring_scheduler"] = start_background_scheduler(app.extensions["jobs"])
