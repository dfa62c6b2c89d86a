"""The Alembic history builds exactly the schema the code declares, up and down, on SQLite and PostgreSQL.

Why: deployments create their tables with `flask db upgrade`, the tests with create_all(); if the two
drift apart, production breaks on a column the tests never missed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text

from app import migrate
from app.storage import (
    AlertDelivery,
    Base,
    ForecastRow,
    ForecastRun,
    ModelVersion,
    PredictionLog,
    StageChange,
    Storage,
    make_engine,
)
from tests.helpers.database import TEST_DATABASE_URL, database_url_for

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not TEST_DATABASE_URL, reason="STORECAST_TEST_DATABASE_URL unset (scripts/test.sh sets it)"
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path: Path) -> str:
    """The URL of an empty database on the requested backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return database_url_for(tmp_path / "migrations")


def _differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _production_version(metrics: dict) -> ModelVersion:
    return ModelVersion(
        name="storecast",
        version=1,
        stage="production",
        artifact_path="models/x.joblib",
        artifact_sha256="0" * 64,
        model_kind="hgb",
        metrics=metrics,
    )


def test_upgrade_to_head_matches_the_models(empty_database: str) -> None:
    migrate.upgrade(empty_database)

    assert migrate.current(empty_database) is not None
    assert _tables(empty_database) >= set(Base.metadata.tables)
    differences = _differences(empty_database)
    assert differences == [], (
        "migrations/ and app/storage.py disagree; regenerate the migration:\n"
        + "\n".join(map(repr, differences))
    )


def test_downgrade_to_base_leaves_an_empty_database(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, "base")

    assert migrate.current(empty_database) is None
    assert _tables(empty_database) <= {"alembic_version"}
    migrate.upgrade(empty_database)  # and back up again: downgrade left nothing behind
    assert _differences(empty_database) == []


def test_downgrade_with_rows_pointing_at_an_altered_table_goes_all_the_way(empty_database: str) -> None:
    """SQLite alters model_versions by copying it; a stage change pointing at a version must not stop
    the downgrade halfway, with later tables dropped and a copy left behind."""
    migrate.upgrade(empty_database)
    storage = Storage(empty_database)
    try:
        with storage.session() as session:
            version = _production_version(metrics={})
            session.add(version)
            session.flush()
            session.add(StageChange(version_id=version.id, to_stage="production", changed_by="ana"))
    finally:
        storage.dispose()
    migrate.downgrade(empty_database, "base")
    assert migrate.current(empty_database) is None
    assert _tables(empty_database) <= {"alembic_version"}


def test_a_migrated_database_stores_and_reads_rows(empty_database: str) -> None:
    """Autoincrement keys, JSON and dates work on the migrated schema, not only on create_all()'s."""
    migrate.upgrade(empty_database)
    storage = Storage(empty_database)
    try:
        with storage.session() as session:
            for dept in (1, 2):
                session.add(
                    PredictionLog(
                        request_id="r1",
                        source="api",
                        model_version="v1",
                        store=1,
                        dept=dept,
                        week=dt.date(2012, 11, 2),
                        horizon=1,
                        inputs={"temperature": 50.5},
                        assumed={"cpi": "last known"},
                        prediction=100.0,
                        lower_80=90.0,
                        upper_80=110.0,
                        lower_95=80.0,
                        upper_95=120.0,
                        latency_ms=1.5,
                    )
                )
            session.add(_production_version(metrics={"wmae": 1.0}))
        with storage.session() as session:
            rows = session.scalars(select(PredictionLog).order_by(PredictionLog.id)).all()
            assert [row.dept for row in rows] == [1, 2]
            assert rows[0].id < rows[1].id
            assert rows[0].inputs == {"temperature": 50.5}
            assert session.scalars(select(ModelVersion.metrics)).one() == {"wmae": 1.0}
    finally:
        storage.dispose()


def test_deliveries_queued_before_event_ids_get_one_each(empty_database: str) -> None:
    """A webhook delivery still pending at the upgrade is sent with an id of its own, like a new one."""
    migrate.upgrade(empty_database, "0004")
    now = dt.datetime(2026, 1, 1)
    alert = {"kind": "drift", "severity": "warning", "message": "m", "details": "{}", "opened_at": now}
    delivery = {"alert_id": 1, "event": "opened", "payload": "{}", "status": "pending", "attempts": 0}
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(text(_insert("alerts", alert)), alert)
            for _ in range(2):
                row = {**delivery, "created_at": now, "next_attempt_at": now}
                connection.execute(text(_insert("alert_deliveries", row)), row)
        migrate.upgrade(empty_database)
        with engine.connect() as connection:
            ids = connection.execute(select(AlertDelivery.event_id)).scalars().all()
    finally:
        engine.dispose()
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(event_id) == 36 for event_id in ids)


def _insert(table: str, row: dict) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + name for name in row)})"


def test_upgrade_is_idempotent(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    head = migrate.current(empty_database)
    migrate.upgrade(empty_database)
    assert migrate.current(empty_database) == head


def test_upgrade_keeps_the_newest_run_of_each_week_and_version(empty_database: str) -> None:
    """Databases written before the unique key may hold duplicate runs: the newest of each stays."""
    migrate.upgrade(empty_database, "0005")
    week, other_week = dt.date(2012, 10, 26), dt.date(2012, 11, 2)
    runs = [(1, week, "v1"), (2, week, "v1"), (3, week, "v1"), (4, week, "v2"), (5, other_week, "v1")]
    band = {"prediction": 1.0, "lower_80": 0.0, "upper_80": 2.0, "lower_95": 0.0, "upper_95": 3.0}
    storage = Storage(empty_database)
    try:
        with storage.session() as session:
            session.execute(
                insert(ForecastRun),
                [
                    {
                        "id": i,
                        "model_version": v,
                        "data_through": d,
                        "horizon": 1,
                        "series": 1,
                        "rows": 1,
                        "seconds": 0.0,
                    }  # fmt: skip
                    for i, d, v in runs
                ],
            )
            session.execute(
                insert(ForecastRow),
                [{"run_id": i, "store": 1, "dept": 1, "week": d, "lag": 1, **band} for i, d, _ in runs],
            )
        migrate.upgrade(empty_database)
        with storage.session() as session:
            assert session.scalars(select(ForecastRun.id).order_by(ForecastRun.id)).all() == [3, 4, 5]
            assert session.scalars(select(ForecastRow.run_id).order_by(ForecastRow.run_id)).all() == [3, 4, 5]
    finally:
        storage.dispose()
    assert _differences(empty_database) == []


@pytest.mark.parametrize(
    "args",
    [["models", "list"], ["runs", "list"], ["monitor", "run"], ["train", "--model", "naive"], ["scheduler"]],
)
def test_commands_on_a_database_without_tables_say_upgrade(tmp_path: Path, args: list[str]):
    from app.factory import create_app

    url = f"sqlite:///{tmp_path / 'new.db'}"  # no create_all(): a database as a deployment first sees it
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": url})
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1 and "run `flask db upgrade` first" in result.output
    assert "Traceback" not in result.output
    # and after the upgrade the same command gets past the check
    migrate.upgrade(app.config["DATABASE_URL"])
    assert migrate.missing_tables(app.extensions["storage"]) == []
    app.extensions["storage"].dispose()


def test_db_downgrade_names_its_revision_asks_first_and_refuses_in_one_line(tmp_path: Path) -> None:
    from app.factory import create_app

    url = f"sqlite:///{tmp_path / 'db.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": url})
    migrate.upgrade(url)
    head = migrate.current(url)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "downgrade"]).exit_code == 2  # no default: the revision is named
    declined = runner.invoke(args=["db", "downgrade", "base"], input="n\n")
    assert declined.exit_code == 1 and "dropped with their rows" in declined.output
    assert migrate.current(url) == head  # nothing dropped
    unknown = runner.invoke(args=["db", "downgrade", "nonsense", "--yes"])
    assert unknown.exit_code == 1 and "nonsense" in unknown.output and "Traceback" not in unknown.output
    assert runner.invoke(args=["db", "downgrade", "base", "--yes"]).exit_code == 0
    assert migrate.current(url) is None
    app.extensions["storage"].dispose()
