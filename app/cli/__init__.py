"""The `flask` commands: thin wrappers that parse options, call one service or core function and print."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import Flask

from app.cli import db, forecast, models, monitor, train
from app.storage import batch_statements


def register_cli(app: Flask) -> None:
    """Attach every command group to app.cli; each command runs under the batch statement limits."""
    for module in (train, models, monitor, forecast, db):
        module.register_cli(app)
    for command in app.cli.commands.values():
        _under_batch_limits(command)


def _under_batch_limits(command: click.Command) -> None:
    """A command's transactions may run long (a publish, a training's writes, an import): they get
    the batch limits, not a request's."""
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            _under_batch_limits(subcommand)
    elif command.callback is not None and not getattr(command.callback, "batch_limits", False):
        command.callback = _batched(command.callback)


def _batched(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with batch_statements():
            return callback(*args, **kwargs)

    run.batch_limits = True  # type: ignore[attr-defined]  # commands shared by several apps: wrap once
    return run
