"""Apply the Alembic migrations in migrations/ to the app's database, and make the commands that
need its tables say so (`flask db upgrade`) instead of failing with an SQL traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup

from app.config import PROJECT_ROOT
from app.storage import Base, Storage

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from app.storage import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def missing_tables(storage: Storage) -> list[str]:
    """Tables of the schema that the database lacks: all of them before the first upgrade."""
    present = set(sqlalchemy.inspect(storage.engine).get_table_names())
    return sorted(set(Base.metadata.tables) - present)


def requires_schema(function: Callable[..., Any]) -> Callable[..., Any]:
    """Check the tables before the command works (train would otherwise fail after training)."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        missing = missing_tables(current_app.extensions["storage"])
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


def register_cli(app: Flask) -> None:
    """`flask db upgrade|downgrade|current`: the schema of the configured database."""

    @app.cli.group("db")
    def db_group() -> None:
        """Database schema migrations."""

    @db_group.command("upgrade")
    @click.argument("revision", default="head")
    def upgrade_command(revision: str) -> None:
        """Apply migrations up to REVISION (default: the newest)."""
        upgrade(app.config["DATABASE_URL"], revision)
        click.echo(f"database at {current(app.config['DATABASE_URL'])}")

    @db_group.command("downgrade")
    @click.argument("revision", default="base")
    def downgrade_command(revision: str) -> None:
        """Revert migrations down to REVISION (default: an empty database)."""
        downgrade(app.config["DATABASE_URL"], revision)
        click.echo(f"database at {current(app.config['DATABASE_URL']) or 'base'}")

    @db_group.command("current")
    def current_command() -> None:
        """Print the revision the database is at."""
        click.echo(current(app.config["DATABASE_URL"]) or "base (empty)")
