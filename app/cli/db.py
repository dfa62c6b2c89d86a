"""`flask db upgrade|downgrade|current`, and the schema check every database command runs first."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import click
from alembic.util import CommandError
from flask import Flask
from flask.cli import AppGroup

from app.extensions import storage
from app.migrate import current, downgrade, missing_tables, upgrade


def requires_schema(function: Callable[..., Any]) -> Callable[..., Any]:
    """Check the tables before the command works (train would otherwise fail after training)."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        missing = missing_tables(storage())
        if missing:
            shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
            raise click.ClickException(f"the database lacks tables ({shown}): run `flask db upgrade` first")
        return function(*args, **kwargs)

    return checked


class SchemaGroup(AppGroup):
    """A command group whose every command checks the tables first (its --help still works)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
        register = super().command(*args, **kwargs)
        return lambda function: register(requires_schema(function))


@contextlib.contextmanager
def _said() -> Iterator[None]:
    """Alembic's refusals (an unknown revision, say) as one line, not a traceback."""
    try:
        yield
    except CommandError as error:
        raise click.ClickException(str(error)) from None


def register_cli(app: Flask) -> None:
    """`flask db upgrade|downgrade|current`: the schema of the configured database."""

    @app.cli.group("db")
    def db_group() -> None:
        """Database schema migrations."""

    @db_group.command("upgrade")
    @click.argument("revision", default="head")
    def upgrade_command(revision: str) -> None:
        """Apply migrations up to REVISION (default: the newest)."""
        with _said():
            upgrade(app.config["DATABASE_URL"], revision)
        click.echo(f"database at {current(app.config['DATABASE_URL'])}")

    @db_group.command("downgrade")
    @click.argument("revision")
    @click.option("--yes", is_flag=True, help="Do not ask: the tables of later revisions go with their rows.")
    def downgrade_command(revision: str, yes: bool) -> None:
        """Revert migrations down to REVISION (`base`: an empty database), dropping the tables and
        columns of the revisions after it with their rows: back the database up first."""
        url = app.config["DATABASE_URL"]
        if not yes:
            click.confirm(
                f"Downgrade from {current(url) or 'base'} to {revision}? Tables and columns of later "
                "revisions are dropped with their rows",
                abort=True,
            )
        with _said():
            downgrade(url, revision)
        click.echo(f"database at {current(url) or 'base'}")

    @db_group.command("current")
    def current_command() -> None:
        """Print the revision the database is at."""
        click.echo(current(app.config["DATABASE_URL"]) or "base (empty)")
