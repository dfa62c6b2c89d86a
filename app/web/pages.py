"""The HTML pages for store planners (Jinja2 with HTMX partial swaps)."""

from flask import Blueprint

bp = Blueprint("pages", __name__)
