"""The optional MLflow mirror, against a local sqlite:/// tracking store (skipped without mlflow)."""

from __future__ import annotations

import pytest

from app.registry import training_runs, versions
from tests.helpers.app import make_test_app
from tests.helpers.registry import register

mlflow = pytest.importorskip("mlflow")


def test_runs_and_versions_are_mirrored(tmp_path, artifacts, small_dataset):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    app = make_test_app(tmp_path, MLFLOW_TRACKING_URI=uri)
    mirror = app.extensions["mlflow_mirror"]
    storage = app.extensions["storage"]

    with training_runs.track_run(
        storage, "backtest", "hgb", params={"folds": 2}, dataset=small_dataset
    ) as run:
        run.log_metrics({"wmae": 1500.0, "by_bucket": {"1-4": {"wmae": 1400.0}}})
    with pytest.raises(RuntimeError), training_runs.track_run(storage, "train", "rf", dataset=small_dataset):
        raise RuntimeError("out of memory")
    register(app, artifacts[0])
    register(app, artifacts[1])
    versions.promote(storage, "storecast", 2, by="tests", reason="mirrored")

    client = mirror.client
    backtests = client.get_experiment_by_name("storecast-backtest")
    (mirrored,) = client.search_runs([backtests.experiment_id])
    assert mirrored.data.metrics["wmae"] == 1500.0 and mirrored.data.metrics["wmae_h1-4"] == 1400.0
    assert mirrored.data.params["folds"] == "2"
    assert mirrored.data.tags["storecast.run_id"] == str(run.id)
    assert mirrored.info.status == "FINISHED"
    (failed,) = client.search_runs([client.get_experiment_by_name("storecast-train").experiment_id])
    assert failed.info.status == "FAILED" and "out of memory" in failed.data.tags["storecast.error"]

    model_versions = {
        v.tags["storecast.version"]: v for v in client.search_model_versions("name='storecast'")
    }
    assert set(model_versions) == {"1", "2"}
    assert model_versions["2"].tags["stage"] == "production"
    assert model_versions["1"].tags["stage"] == "archived"
    alias = client.get_model_version_by_alias("storecast", "production")
    assert alias.tags["storecast.version"] == "2"


def test_no_uri_no_mirror(registry_app):
    assert "mlflow_mirror" not in registry_app.extensions
