"""PostgreSQL sessions carry the request limits; jobs and commands get the batch limits for their
transactions only; a statement cut by either is a transient error (503, retry), not a bug."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from app.config import Config
from app.storage import (
    StatementLimits,
    Storage,
    batch_statements,
    is_transient_database_error,
    statement_limits,
)
from tests.helpers.database import TEST_DATABASE_URL, database_url_for

requires_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="STORECAST_TEST_DATABASE_URL unset (scripts/test.sh sets it)"
)

REQUEST = StatementLimits(lock_seconds=2, statement_seconds=0.5)
BATCH = StatementLimits(lock_seconds=60, statement_seconds=1800)


@pytest.fixture
def storage(tmp_path):
    storage = Storage(database_url_for(tmp_path), REQUEST, BATCH)
    yield storage
    storage.dispose()


def _limits(storage: Storage) -> tuple[str, str]:
    with storage.engine.connect() as connection:
        return (
            connection.exec_driver_sql("SHOW lock_timeout").scalar(),
            connection.exec_driver_sql("SHOW statement_timeout").scalar(),
        )


@requires_postgresql
def test_sessions_carry_the_request_limits_and_batch_work_its_own(storage) -> None:
    assert _limits(storage) == ("2s", "500ms")
    with batch_statements():
        assert _limits(storage) == ("1min", "30min")
        with storage.session() as session:  # the ORM's transactions too
            assert session.connection().exec_driver_sql("SHOW statement_timeout").scalar() == "30min"
    assert _limits(storage) == ("2s", "500ms")  # the pooled connection is back to the request limits


@requires_postgresql
def test_a_statement_past_its_limit_is_transient(storage) -> None:
    with pytest.raises(OperationalError) as cut, storage.engine.connect() as connection:
        connection.exec_driver_sql("SELECT pg_sleep(2)")
    assert "statement timeout" in str(cut.value) and is_transient_database_error(cut.value)
    with batch_statements(), storage.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT pg_sleep(0.7), 1").all()[0][1] == 1  # long work passes


def test_the_defaults_fail_a_request_fast_and_leave_commands_room() -> None:
    request, batch = statement_limits(Config.from_environment())
    assert 0 < request.lock_seconds < request.statement_seconds <= 5
    assert batch.lock_seconds >= 60 and batch.statement_seconds >= 600
