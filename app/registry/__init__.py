"""Model registry: runs, versions, stages and their history; promotion; hot swap hooks."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the registry's blueprints, hooks and CLI commands."""
    from app import csrf
    from app.registry import cli, hooks, mlflow_mirror, views

    csrf.exempt(views.api_bp)
    app.register_blueprint(views.api_bp, url_prefix="/api/v1")
    app.register_blueprint(views.pages_bp)
    hooks.install(app)
    mlflow_mirror.install(app)
    cli.register_cli(app)
