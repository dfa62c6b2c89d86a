"""Rolling origin: an ingested week moves data_through and the forecasts, through the one pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import truncate
from app.forecasting.panel import Panel
from app.loop.history import production_forecaster, roll_forward
from app.loop.replay import week_csv
from app.monitoring import actuals
from app.registry.actual_history import actuals_frame
from tests.helpers.data import week_rows


def _ingest(app, dataset, week: pd.Timestamp) -> None:
    with app.extensions["storage"].session() as session:
        actuals.import_csv(session, week_csv(week_rows(dataset, week)), model_name=app.config["MODEL_NAME"])


def test_an_ingested_week_moves_data_through_and_changes_the_next_forecasts(
    loop_app, small_dataset, held_back_start
):
    storage = loop_app.extensions["storage"]
    base = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    assert base.data_through == held_back_start.date()
    assert roll_forward(base, storage) is base  # nothing ingested yet

    week = held_back_start + pd.Timedelta(weeks=1)
    _ingest(loop_app, small_dataset, week)
    rolled = roll_forward(base, storage)
    assert rolled.data_through == week.date() and rolled.version == base.version

    store, dept = int(base.panel.store[0]), int(base.panel.dept[0])
    target = week + pd.Timedelta(weeks=1)
    before = base.forecast(store, dept, target, 1)[0]
    after = rolled.forecast(store, dept, target, 1)[0]
    assert (before.horizon, after.horizon) == (2, 1)
    assert after.data_through == week.date()
    assert after.prediction != before.prediction


def test_the_rolled_model_equals_the_model_built_at_that_origin_with_later_sales_present(
    loop_app, small_dataset, held_back_start
):
    """No leakage: sales after the new origin (in the full data) change nothing the rolled model says."""
    storage = loop_app.extensions["storage"]
    base = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    for k in (1, 2, 3):
        _ingest(loop_app, small_dataset, held_back_start + pd.Timedelta(weeks=k))
    rolled = roll_forward(base, storage)
    full = Panel.from_sales(small_dataset.sales)
    direct = Forecaster(
        estimator=base.estimator,
        config=base.config,
        panel=truncate(full, rolled.origin_week),
        covariates=rolled.covariates,
        calibrator=base.calibrator,
    )
    mine, theirs = rolled.forecast_all(13), direct.forecast_all(13)
    assert len(mine) == len(theirs)
    np.testing.assert_allclose(mine["prediction"], theirs["prediction"], rtol=1e-9)
    np.testing.assert_allclose(mine["upper_95"], theirs["upper_95"], rtol=1e-9)


def test_every_worker_follows_the_actuals_within_the_refresh_interval(
    loop_app, small_dataset, held_back_start
):
    holder = loop_app.extensions["model_holder"]  # MODEL_REFRESH_SECONDS = 0 in tests
    assert holder.get().data_through == held_back_start.date()
    week = held_back_start + pd.Timedelta(weeks=1)
    _ingest(loop_app, small_dataset, week)
    assert holder.get().data_through == week.date()
    assert holder.status()["trained_through"] == held_back_start.date().isoformat()


def test_actual_sales_are_read_back_per_lineage(loop_app, small_dataset, held_back_start):
    storage = loop_app.extensions["storage"]
    week = held_back_start + pd.Timedelta(weeks=1)
    _ingest(loop_app, small_dataset, week)
    lineage = small_dataset.lineage()
    mine = actuals_frame(storage, lineage, untagged=False)
    assert len(mine) == len(week_rows(small_dataset, week)) and set(mine["date"]) == {week}
    assert actuals_frame(storage, "another-dataset", untagged=False).empty
