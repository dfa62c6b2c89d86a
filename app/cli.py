"""The `flask` commands for the forecasting core: train, backtest, submission."""

from flask import Flask


def register_cli(app: Flask) -> None:
    """Attach the core's commands to app.cli."""
