"""Alembic environment: the database URL comes from the caller or from the app's configuration."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from app.storage import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.factory import create_app

    return create_app({"TESTING": True}).config["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    """Run the migrations on `connection`. SQLite alters a table by copying it (batch mode) and drops
    the old one, which its foreign-key check refuses while rows of another table point at it: the
    check is off while the migrations run (as Alembic's batch documentation says), on again after."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # a PRAGMA does nothing inside a transaction: this one is committed first
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
