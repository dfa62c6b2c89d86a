"""Model registry: runs, versions, stages and their history."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the registry's blueprint and CLI commands."""
