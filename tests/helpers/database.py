"""The test database: a SQLite file per test, or a PostgreSQL database per test when
STORECAST_TEST_DATABASE_URL names a server whose user may CREATE DATABASE (scripts/test.sh's second leg).

The PostgreSQL databases are not dropped: each DROP DATABASE forces a checkpoint, slow over a whole run,
and the leg's server is thrown away afterwards."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

TEST_DATABASE_URL = os.environ.get("STORECAST_TEST_DATABASE_URL")
_created_databases: set[str] = set()


def database_url_for(tmp_path: Path) -> str:
    """SQLite in tmp_path, or a fresh PostgreSQL database named after tmp_path (same path, same database)."""
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path / 'storecast.db'}"
    from sqlalchemy import create_engine, make_url

    name = "t_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:20]
    if name not in _created_databases:
        admin = create_engine(make_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        _created_databases.add(name)
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
