"""A short replay of the whole loop (8 weeks of the small synthetic chain), as `flask replay` runs it."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest

from app.loop import publish
from app.loop.replay import FORECASTS_HEADER, ReplaySettings, replay, write_forecasts
from app.monitoring import actuals
from tests.helpers.training import TINY_TRAIN_PARAMS


def test_an_eight_week_replay_publishes_scores_and_retrains_through_the_gate(app, small_dataset):
    storage = app.extensions["storage"]
    start = small_dataset.last_week - pd.Timedelta(weeks=8)
    messages: list[str] = []
    result = replay(
        storage,
        small_dataset,
        ReplaySettings(start=start.date(), weeks=8, retrain_every=4, params=TINY_TRAIN_PARAMS),
        model_name=app.config["MODEL_NAME"],
        models_dir=app.config["MODELS_DIR"],
        progress=messages.append,
    )
    weeks = result["weeks"]
    assert [w["week"] for w in weeks] == [
        (start + pd.Timedelta(weeks=k)).date().isoformat() for k in range(1, 9)
    ]
    assert [w["data_through"] for w in weeks] == [w["week"] for w in weeks]  # forecasts follow every week
    series = small_dataset.sales.groupby(["store", "dept"]).ngroups
    assert all(w["published_rows"] >= 52 * (series - 2) for w in weeks)
    assert all(isinstance(w["alerts_opened"], list) for w in weeks)

    by_lag = result["accuracy_by_lag"]
    assert by_lag["1"]["rows"] == sum(w["actual_rows"] for w in weeks[1:])  # week 1 has no earlier run
    assert {"2-4", "5-13"} <= set(by_lag)
    for figures in by_lag.values():
        assert figures["wmae"] > 0 and figures["naive_wmae"] > 0 and 0 <= figures["coverage_80"] <= 1
    assert set(result["backtest_by_bucket"]) >= {"1", "2-4", "5-13"}
    assert [r["week"] for r in result["retrains"]] == [weeks[3]["week"], weeks[7]["week"]]
    assert all(r["gate"] for r in result["retrains"])
    assert any("week 8/8" in m for m in messages)

    out = io.StringIO()
    count = write_forecasts(storage, out)
    frame = pd.read_csv(io.StringIO(out.getvalue()))
    assert list(frame.columns) == FORECASTS_HEADER and len(frame) == count
    assert count == sum(run.rows for run in publish.list_forecast_runs(storage))
    assert sorted(frame["run_week"].unique()) == [w["week"] for w in weeks]


def test_replay_command_refuses_a_start_outside_the_data(app):
    result = app.test_cli_runner().invoke(args=["replay", "--start", "1999-01-01", "--weeks", "2"])
    assert result.exit_code != 0 and "--start" in result.output


def test_replay_checks_each_week_of_actuals_as_the_import_does(app, small_dataset):
    start = small_dataset.last_week - pd.Timedelta(weeks=2)
    sales = small_dataset.sales.copy()
    typo = sales.index[(sales["date"] == start + pd.Timedelta(weeks=1))][0]
    sales.loc[typo, "weekly_sales"] = 99_999_999.0
    dataset = dataclasses.replace(small_dataset, sales=sales)
    with pytest.raises(actuals.ActualsError) as caught:
        replay(
            app.extensions["storage"],
            dataset,
            ReplaySettings(start=start.date(), weeks=1, params=TINY_TRAIN_PARAMS),
            model_name=app.config["MODEL_NAME"],
            models_dir=app.config["MODELS_DIR"],
        )
    (problem,) = caught.value.errors
    assert problem["field"] == "Weekly_Sales" and "times the series' largest week" in problem["message"]
