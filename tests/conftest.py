"""Shared fixtures: a small synthetic dataset, a model trained on it once, and apps on temporary databases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.factory import create_app
from app.monitoring import metrics
from app.storage import ModelVersion, StageChange
from tests.helpers.data import REAL_DATA_DIR, has_real_data
from tests.helpers.paths import REPO_ROOT  # noqa: F401

SMALL_TRAIN_PARAMS = {"max_iter": 60}
TINY_TRAIN_PARAMS = {"max_iter": 15, "max_leaf_nodes": 15, "origin_step": 8}  # tests that train their own


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the `real_data` tests, with the folder they looked in, when the Kaggle files are absent."""
    if has_real_data():
        return
    reason = f"real Walmart files absent: no train.csv in {REAL_DATA_DIR} (STORECAST_DATA names their folder)"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("real_data"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def small_dataset():
    from app.forecasting.synthetic import generate_dataset

    return generate_dataset(seed=7, n_stores=4, n_depts=6)


@pytest.fixture(scope="session")
def small_artifact(small_dataset, tmp_path_factory):
    """A default-kind model trained once per test session on the small synthetic dataset."""
    from app.forecasting.training import save_model, train

    trained = train(small_dataset, kind="hgb", params=SMALL_TRAIN_PARAMS)
    return save_model(trained, tmp_path_factory.mktemp("models"))


# Set (scripts/test.sh's PostgreSQL leg) to run the suite on PostgreSQL: a server URL whose user may
# CREATE DATABASE. Each tmp_path then gets its own database. They are not dropped (each DROP DATABASE
# forces a checkpoint, slow over a whole run); the leg's server is thrown away afterwards.
TEST_DATABASE_URL = os.environ.get("STORECAST_TEST_DATABASE_URL")
_created_databases: set[str] = set()
_open_apps: list = []


def _test_database_url(tmp_path: Path) -> str:
    """SQLite in tmp_path, or a fresh PostgreSQL database named after tmp_path (same path, same database)."""
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path / 'storecast.db'}"
    import hashlib

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


@pytest.fixture(autouse=True)
def _dispose_test_apps():
    """Close every test app's connections after each test, so PostgreSQL never runs out of them."""
    yield
    while _open_apps:
        _open_apps.pop().extensions["storage"].dispose()


def make_test_app(tmp_path: Path, **overrides):
    """A real app on a fresh database (SQLite file in tmp_path, or PostgreSQL), schema from the models."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test",
        "DATABASE_URL": overrides.get("DATABASE_URL") or _test_database_url(tmp_path),
        "MODELS_DIR": str(tmp_path / "models"),
        "MODEL_REFRESH_SECONDS": 0.0,
        "DATA_SOURCE_FILE": str(tmp_path / "data-source.json"),
        # No admin token unless a test gives one: never the one `make run` wrote to instance/config.py.
        "STORECAST_ADMIN_TOKEN": None,
        **overrides,
    }
    app = create_app(config)
    app.extensions["storage"].create_all()
    _open_apps.append(app)
    return app


def register_production(app, artifact) -> None:
    """Put an artifact into the registry as the production version (as the first train does)."""
    with app.extensions["storage"].session() as session:
        version = ModelVersion(
            name=app.config["MODEL_NAME"],
            version=1,
            stage="production",
            artifact_path=str(artifact.path),
            artifact_sha256=artifact.sha256,
            model_kind=artifact.metadata.get("kind", "hgb"),
            metrics=artifact.metadata.get("backtest", {}),
        )
        session.add(version)
        session.flush()
        session.add(StageChange(version_id=version.id, to_stage="production", changed_by="tests"))


@pytest.fixture
def app(tmp_path):
    """An app with an empty database and no model."""
    application = make_test_app(tmp_path)
    yield application
    application.extensions["storage"].dispose()


@pytest.fixture
def model_app(tmp_path, small_artifact):
    """An app whose registry has the small model in production."""
    application = make_test_app(tmp_path)
    register_production(application, small_artifact)
    yield application
    application.extensions["storage"].dispose()


@pytest.fixture
def client(model_app):
    return model_app.test_client()


@pytest.fixture
def mon_app(tmp_path):
    """An app with an empty database; request rows are flushed by the tests, not by a thread."""
    app = make_test_app(tmp_path, REQUEST_LOG_FLUSH_SECONDS=0)
    for counter in (metrics.HTTP_REQUESTS, metrics.HTTP_LATENCY, metrics.PREDICTIONS):
        counter.clear()  # this process' counters start from zero for each monitoring test
    yield app
    app.extensions["storage"].dispose()
