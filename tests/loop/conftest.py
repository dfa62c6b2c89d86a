"""Loop fixtures: a small model trained 12 weeks before the data ends, so weeks can arrive one by one."""

from __future__ import annotations

import pandas as pd
import pytest

from app.registry import versions
from tests.helpers.app import make_test_app
from tests.helpers.training import TINY_TRAIN_PARAMS

HELD_BACK_WEEKS = 12


@pytest.fixture(scope="session")
def held_back_start(small_dataset) -> pd.Timestamp:
    return small_dataset.last_week - pd.Timedelta(weeks=HELD_BACK_WEEKS)


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
