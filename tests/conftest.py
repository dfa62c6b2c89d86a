"""Shared fixtures: a small synthetic dataset, a model trained on it once, and apps on temporary databases."""

from __future__ import annotations

import pytest

from app.monitoring import metrics
from tests.helpers.app import dispose_test_apps, make_test_app
from tests.helpers.data import REAL_DATA_DIR, has_real_data
from tests.helpers.registry import register_production
from tests.helpers.training import SMALL_TRAIN_PARAMS


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


@pytest.fixture(autouse=True)
def _dispose_test_apps():
    """Close every test app's connections after each test, so PostgreSQL never runs out of them."""
    yield
    dispose_test_apps()


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
