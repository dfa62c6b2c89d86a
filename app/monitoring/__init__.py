"""Monitoring: the prediction log, drift, performance, alerts and the scheduled jobs.

drift.py and performance.py are plain Python (no Flask), so the core may import them at training time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """Register the monitoring blueprints, request metrics, CLI commands and (optionally) the scheduler."""
    from app import csrf
    from app.monitoring import cli, request_metrics, views

    csrf.exempt(views.api_bp)
    app.register_blueprint(views.pages_bp)
    app.register_blueprint(views.api_bp, url_prefix="/api/v1")
    request_metrics.init_app(app)
    cli.register_cli(app)

    if app.config.get("SCHEDULER_ENABLED") and not app.testing:
        # Started on the first request, so under gunicorn's preload it runs in each worker (after fork),
        # never in the master; the jobs' slot claims keep each interval's run unique.
        started = {"done": False}

        @app.before_request
        def _start_scheduler() -> None:
            if not started["done"]:
                started["done"] = True
                from app.monitoring.jobs import start_background_scheduler

                start_background_scheduler(app)
