"""Shared fixtures: a small synthetic dataset, a model trained on it once, and apps on temporary databases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import create_app
from app.storage import ModelVersion, StageChange

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = Path(os.environ.get("STORECAST_DATA") or REPO_ROOT.parent / "shared" / "data" / "walmart")
HAS_REAL_DATA = (REAL_DATA_DIR / "train.csv").exists()
requires_real_data = pytest.mark.skipif(
    not HAS_REAL_DATA, reason=f"real Walmart files absent ({REAL_DATA_DIR})"
)

SMALL_TRAIN_PARAMS = {"max_iter": 60}


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


def make_test_app(tmp_path: Path, **overrides):
    """A real app on a real SQLite file in tmp_path, schema created from the models."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'storecast.db'}",
        "MODELS_DIR": str(tmp_path / "models"),
        "MODEL_REFRESH_SECONDS": 0.0,
        **overrides,
    }
    app = create_app(config)
    app.extensions["storage"].create_all()
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
