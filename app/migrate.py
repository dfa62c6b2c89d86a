"""Apply the Alembic migrations in migrations/ to the app's database, and make the commands that
need its tables say so (`flask db upgrade`) instead of failing with an SQL traceback."""

from __future__ import annotations

import sqlalchemy
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext

from app.config import PROJECT_ROOT
from app.storage import Base, Storage, make_engine

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
