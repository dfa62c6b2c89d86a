"""The weekly run on Dask equals the in-process run: a real LocalCluster of 2 worker processes that
load the registered artifact themselves, on a small synthetic chain rolled forward by ingested weeks."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from app.forecasting.artifacts import ArtifactError
from app.forecasting.backtest import run_backtest
from app.forecasting.engine import Engine, ModelSource, forecast_run, imported_packages, local_cluster
from app.loop import publish
from app.loop.history import rolled_production
from app.loop.replay import week_csv
from app.monitoring import actuals
from tests.helpers.data import week_rows
from tests.helpers.training import TINY_TRAIN_PARAMS


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes for the module: each imports the app once (seconds on a busy machine)."""
    with local_cluster(2) as running:
        yield running


def _ingest_weeks(app, dataset, start: pd.Timestamp, weeks: int) -> None:
    with app.extensions["storage"].session() as session:
        for k in range(1, weeks + 1):
            rows = week_rows(dataset, start + pd.Timedelta(weeks=k))
            actuals.import_csv(session, week_csv(rows), model_name=app.config["MODEL_NAME"])


def test_the_dask_run_equals_the_in_process_run(loop_app, small_dataset, held_back_start, cluster):
    _ingest_weeks(loop_app, small_dataset, held_back_start, 2)
    storage = loop_app.extensions["storage"]
    forecaster, source = rolled_production(storage, loop_app.config["MODEL_NAME"])
    assert forecaster.data_through > held_back_start.date()  # workers must roll forward too

    local = forecast_run(forecaster)
    engine = Engine("dask", scheduler_address=cluster.scheduler_address, partition_series=5)
    distributed = forecast_run(forecaster, engine=engine, source=source)
    assert len(local) > 5 * 52  # several partitions
    pd.testing.assert_frame_equal(distributed, local, check_exact=False, rtol=1e-9)

    run = publish.publish(storage, forecaster, engine=engine, source=source)
    stored = pd.DataFrame(publish.forecast_run_rows(storage, run.id))
    assert run.rows == len(local) and run.series == len(local) // 52
    ordered = local.sort_values(["store", "dept", "lag"]).reset_index(drop=True)
    np.testing.assert_allclose(stored["prediction"], ordered["prediction"], rtol=1e-9)

    scattered = forecast_run(forecaster, engine=engine)  # no source: the model itself is sent once
    pd.testing.assert_frame_equal(scattered, local, check_exact=False, rtol=1e-9)


def test_workers_import_the_core_only(loop_app, cluster):
    """After scoring runs, a worker has imported app.forecasting and its libraries, never Flask, the
    database layer or the web app (app/__init__.py imports nothing; the factory is app.factory).
    Dask itself brings click and jinja2."""
    storage = loop_app.extensions["storage"]
    forecaster, source = rolled_production(storage, loop_app.config["MODEL_NAME"])
    engine = Engine("dask", scheduler_address=cluster.scheduler_address, partition_series=5)
    forecast_run(forecaster, engine=engine, source=source)
    # Deferred: distributed is the engine's optional dependency (its Client, as the engine uses it).
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        packages = client.run(imported_packages)
    assert len(packages) == 2
    for imported in packages.values():
        assert "app" in imported and "sklearn" in imported
        assert not {"flask", "werkzeug", "sqlalchemy", "alembic", "apscheduler"} & set(imported)


def test_the_backtest_on_dask_equals_the_in_process_scoring(small_dataset, held_back_start, cluster):
    """The same partitioned scoring at a past origin: the fold's rows scored by the workers equal its
    model's in-process predictions (one training: the local backtest is this scoring after it)."""
    engine = Engine("dask", scheduler_address=cluster.scheduler_address, partition_series=5)
    result = run_backtest(small_dataset, held_back_start, 8, params=TINY_TRAIN_PARAMS, engine=engine)
    sales = small_dataset.sales
    window = (sales["date"] > held_back_start) & (sales["date"] <= held_back_start + pd.Timedelta(weeks=8))
    rows = sales[window].reset_index(drop=True)
    local = result.models[0].predict_frame(rows[["store", "dept", "date"]])
    assert len(result.predictions) == len(rows) > 5 * 8  # several partitions
    for band in ("prediction", "lower_80", "upper_80", "lower_95", "upper_95"):
        np.testing.assert_allclose(result.predictions[band], local[band], rtol=1e-9)


def test_workers_refuse_an_artifact_whose_hash_differs(loop_app, cluster):
    storage = loop_app.extensions["storage"]
    forecaster, source = rolled_production(storage, loop_app.config["MODEL_NAME"])
    forged = ModelSource(source.artifact_path, "0" * 64, source.version, source.sales, source.features)
    engine = Engine("dask", scheduler_address=cluster.scheduler_address)
    with pytest.raises(ArtifactError, match="SHA-256"):
        forecast_run(forecaster, engine=engine, source=forged)


def _publish_on_dask(app, tmp_path) -> None:
    out = tmp_path / "run.csv"
    result = app.test_cli_runner().invoke(args=["forecast", "publish", "--engine", "dask", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "on dask" in result.output
    run = publish.latest_forecast_run(app.extensions["storage"], app.config["MODEL_NAME"])
    assert len(pd.read_csv(out)) == run.rows == int(run.series) * 52


def test_publish_command_on_the_cluster_at_dask_scheduler_address(loop_app, tmp_path, cluster):
    loop_app.config["DASK_SCHEDULER_ADDRESS"] = cluster.scheduler_address
    _publish_on_dask(loop_app, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("STORECAST_SLOW"), reason="set STORECAST_SLOW=1 (own cluster)")
def test_publish_command_on_an_embedded_cluster(loop_app, tmp_path):
    loop_app.config["DASK_WORKERS"] = 2
    _publish_on_dask(loop_app, tmp_path)


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        Engine("spark")  # type: ignore[arg-type]
