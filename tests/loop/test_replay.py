"""A short replay of the whole loop (8 weeks of the small synthetic chain), as `flask replay` runs it,
clean and with faults put in at known weeks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pandas as pd
import pytest

from app.forecasting.scores import interval_score, weighted_quantile_loss
from app.loop import faults, publish
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

    # the report's interval score and wQL at lag 1 are those of the published rows and their actuals
    sales = small_dataset.sales.assign(Date=small_dataset.sales["date"].dt.date.astype(str))
    lag1 = frame[frame["lag"] == 1].merge(
        sales.rename(columns={"store": "Store", "dept": "Dept"}), on=["Store", "Dept", "Date"]
    )
    y = lag1["weekly_sales"].to_numpy()
    assert len(lag1) == by_lag["1"]["rows"] == by_lag["1"]["scored_rows"]
    expected = {
        "interval_score_80": interval_score(y, lag1["lower_80"], lag1["upper_80"], 0.2),
        "interval_score_95": interval_score(y, lag1["lower_95"], lag1["upper_95"], 0.05),
        "wql_0.1": weighted_quantile_loss(y, lag1["lower_80"], 0.1),
        "wql_0.5": weighted_quantile_loss(y, lag1["prediction"], 0.5),
        "wql_0.9": weighted_quantile_loss(y, lag1["upper_80"], 0.9),
    }
    for name, value in expected.items():
        assert by_lag["1"][name] == pytest.approx(value, rel=1e-3), name
        assert result["backtest_by_bucket"]["1"][name] > 0  # and the backtest's, beside them

    # the same forecasts by quarter of series (volatility, size) and lag bucket, every row in one quarter
    scores = result["scores"]
    assert scores["rows"] == sum(f["rows"] for f in by_lag.values())
    lag1_score = scores["by_horizon"]["1"]["interval_score_80"]
    assert lag1_score == pytest.approx(expected["interval_score_80"], rel=1e-3)
    for group in ("by_volatility_quarter", "by_size_quarter"):
        quarters = scores[group]
        assert set(quarters) == {"Q1", "Q2", "Q3", "Q4"}
        assert sum(q["rows"] for q in quarters.values()) == scores["rows"]
        assert all(set(q["by_horizon"]) <= set(by_lag) for q in quarters.values())


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


REPLAY_WEEKS = 8


@pytest.fixture(scope="module")
def steady(small_dataset):
    """The small chain without its series that skip weeks (the data-quality check's business)."""
    sales = small_dataset.sales
    recent = sales[sales["date"] > small_dataset.last_week - pd.Timedelta(weeks=40)]
    weeks = recent.groupby(["store", "dept"])["date"].nunique()
    keep = weeks[weeks == recent["date"].nunique()].reset_index()[["store", "dept"]]
    return dataclasses.replace(small_dataset, sales=sales.merge(keep, on=["store", "dept"]))


@pytest.fixture(scope="module")
def steady_artifact(steady, tmp_path_factory):
    from app.forecasting.training import save_model, train

    through = steady.last_week - pd.Timedelta(weeks=REPLAY_WEEKS)
    trained = train(steady, kind="hgb", through=through, params=TINY_TRAIN_PARAMS)
    return save_model(trained, tmp_path_factory.mktemp("steady-models"))


def _replay_with(app, steady, artifact, specs=()):
    start = steady.last_week - pd.Timedelta(weeks=REPLAY_WEEKS)
    return replay(
        app.extensions["storage"],
        steady,
        ReplaySettings(
            start=start.date(),
            weeks=REPLAY_WEEKS,
            artifact=artifact,
            faults=tuple(faults.parse_faults(specs)),
        ),
        model_name=app.config["MODEL_NAME"],
        models_dir=app.config["MODELS_DIR"],
    )


def test_a_clean_replay_raises_no_warning(app, steady, steady_artifact):
    result = _replay_with(app, steady, steady_artifact)
    warnings = [a for w in result["weeks"] for a in w["alerts_opened"] if a["severity"] != "info"]
    assert warnings == []
    assert (
        result["clean_alerts"]["weeks"] == REPLAY_WEEKS and result["clean_alerts"]["by_level"]["warning"] == 0
    )
    assert result["first_version"] == "v1"


def test_a_replay_with_faults_reports_the_weeks_until_each_is_named(app, steady, steady_artifact):
    third = (steady.last_week - pd.Timedelta(weeks=REPLAY_WEEKS - 3)).date()
    sixth = third + dt.timedelta(weeks=3)
    specs = [
        f"store_level:store=2,size=-0.5,start={third}",
        f"dept_collapse:store=4,dept=77,start={third}",
        f"covariate:stores=1,column=temperature,mode=offset,size=-40,start={third}",
        f"covariate:stores=3,column=temperature,mode=stuck,start={third}",
        f"actuals_missing:start={sixth}",
    ]
    assert not any(faults.unknown_entity(f, steady) for f in faults.parse_faults(specs))
    result = _replay_with(app, steady, steady_artifact, specs)
    found = {f["spec"]: f for f in result["faults"]}
    level, collapse, offset, stuck, missing = (found[s] for s in specs)
    assert level["weeks_to_warning"] in (1, 2) and level["warning_kind"] == "store_total"
    assert collapse["weeks_to_warning"] in (1, 2, 3)
    assert (offset["weeks_to_warning"], offset["warning_kind"]) == (1, "covariates")
    assert (stuck["weeks_to_warning"], stuck["warning_kind"]) == (1, "covariates")
    assert (missing["weeks_to_warning"], missing["warning_kind"]) == (1, "actuals_feed")
    assert result["clean_alerts"]["weeks"] == 2 and result["clean_alerts"]["by_level"]["warning"] == 0


def test_replay_command_names_a_bad_fault_spec(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["replay", "--start", "2012-05-04", "--weeks", "2", "--inject", "store_level:store=1"]
    )
    assert (
        result.exit_code != 0
        and "--inject" in result.output
        and "start, size: required by store_level" in result.output
    )
    late = "store_level:store=1,size=-0.5,start=2012-08-03"
    result = runner.invoke(args=["replay", "--start", "2012-05-04", "--weeks", "2", "--inject", late])
    assert result.exit_code != 0 and "must fall within the replayed weeks" in result.output
    absent = "store_level:store=999,size=-0.5,start=2012-05-11"
    result = runner.invoke(args=["replay", "--start", "2012-05-04", "--weeks", "2", "--inject", absent])
    assert result.exit_code != 0 and "the data has no store 999" in result.output
