"""The `flask` commands: thin wrappers that parse options, call one service or core function and print."""

from __future__ import annotations

from flask import Flask

from app.cli import db, forecast, models, monitor, train


def register_cli(app: Flask) -> None:
    """Attach every command group to app.cli."""
    for module in (train, models, monitor, forecast, db):
        module.register_cli(app)
