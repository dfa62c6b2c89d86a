"""Shared fixtures: a small synthetic dataset, models trained on it once, and apps on temporary databases."""

from __future__ import annotations

import pandas as pd
import pytest

from app.monitoring import metrics
from app.registry import versions
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import dispose_test_apps, make_test_app
from tests.helpers.data import REAL_DATA_DIR, has_real_data
from tests.helpers.registry import copy_artifact, register_production
from tests.helpers.training import SMALL_TRAIN_PARAMS, TINY_TRAIN_PARAMS


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
    metrics.reset()  # this process' counters start from zero for each monitoring test
    yield app
    app.extensions["storage"].dispose()


# The weekly loop: a small model trained 12 weeks before the data ends, so weeks can arrive one by one.


@pytest.fixture(scope="session")
def held_back_start(small_dataset) -> pd.Timestamp:
    """Twelve weeks before the small dataset ends: the weekly loop's tests ingest the weeks after it."""
    return small_dataset.last_week - pd.Timedelta(weeks=12)


@pytest.fixture(scope="session")
def loop_artifact(small_dataset, held_back_start, tmp_path_factory):
    from app.forecasting.training import save_model, train

    trained = train(small_dataset, kind="hgb", through=held_back_start, params=TINY_TRAIN_PARAMS)
    return save_model(trained, tmp_path_factory.mktemp("loop-models"))


@pytest.fixture
def loop_app(tmp_path, loop_artifact):
    """An app whose production model knows sales up to `held_back_start`."""
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    meta = loop_artifact.metadata
    versions.register_version(
        storage,
        app.config["MODEL_NAME"],
        artifact_path=loop_artifact.path,
        artifact_sha256=loop_artifact.sha256,
        model_kind="hgb",
        metrics=meta.get("backtest") or {},
        data_source=meta.get("data_source"),
        data_lineage=meta.get("data_lineage"),
    )
    yield app
    storage.dispose()


# The registry: copies of the small artifact (a test may corrupt its own copy) and admin apps.


@pytest.fixture
def artifacts(small_artifact, tmp_path):
    """Three distinct artifact files of the small model: v1, v2, v3 material."""
    return [copy_artifact(small_artifact, tmp_path / "models", f"storecast-{i}") for i in (1, 2, 3)]


@pytest.fixture
def registry_app(tmp_path):
    """An app with an admin token configured and an empty registry."""
    return make_test_app(tmp_path, STORECAST_ADMIN_TOKEN=ADMIN_TOKEN)


# Monitoring: training rows with their covariates.


@pytest.fixture(scope="session")
def covariate_frame(small_dataset) -> pd.DataFrame:
    """Training rows with their covariates: what the reference is built from and windows are drawn like."""
    sales = small_dataset.sales[["store", "dept", "date", "weekly_sales", "is_holiday"]]
    covariates = small_dataset.features.drop(columns=["is_holiday"])
    return sales.merge(covariates, on=["store", "date"], how="left")
