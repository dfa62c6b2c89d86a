"""The web layer: JSON API and HTML pages; it calls the core and computes nothing of its own."""

from flask import Flask


def init_app(app: Flask) -> None:
    from app import csrf
    from app.web import api, pages

    csrf.exempt(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    api.register_error_handlers(app)
