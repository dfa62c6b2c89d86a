"""Monitoring: the prediction log, drift, performance, alerts and the scheduled jobs."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the monitoring blueprint, request metrics and CLI commands."""
