"""The core's flask commands through Flask's CLI runner: train, backtest, submission."""

import json
from pathlib import Path

import pandas as pd
import pytest

from app.forecasting.synthetic import generate_dataset, write_kaggle_csvs
from tests.helpers.app import make_test_app
from tests.helpers.training import TINY_TRAIN_PARAMS


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kaggle")
    write_kaggle_csvs(generate_dataset(seed=3, n_stores=4, n_depts=6), directory)
    return directory


@pytest.fixture
def cli_app(tmp_path):
    return make_test_app(tmp_path, TRAIN_PARAMS=TINY_TRAIN_PARAMS)


def test_train_writes_artifact_and_calls_the_hook(cli_app, data_dir):
    seen = []
    cli_app.extensions["on_model_trained"] = seen.append
    result = cli_app.test_cli_runner().invoke(
        args=["train", "--data", str(data_dir), "--through", "2012-06-29"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "internal backtest" in result.output
    assert len(seen) == 1 and seen[0].path.exists() and seen[0].metadata_path.exists()
    assert seen[0].metadata["origin"] == "2012-06-29"
    assert str(seen[0].path).startswith(cli_app.config["MODELS_DIR"])


def test_backtest_prints_a_table_and_writes_json_predictions_and_totals(cli_app, data_dir, tmp_path):
    out_json, out_csv, out_totals = tmp_path / "bt.json", tmp_path / "bt.csv", tmp_path / "totals.csv"
    args = [
        "backtest",
        "--data",
        str(data_dir),
        "--origin",
        "2012-01-27",
        "--horizon",
        "13",
        "--model",
        "hgb",
        "--json",
        str(out_json),
        "--predictions",
        str(out_csv),
        "--totals",
        str(out_totals),
    ]
    result = cli_app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "WMAE" in result.output and "seasonal naive" in result.output
    assert "totals by level" in result.output
    figures = json.loads(out_json.read_text())
    assert {"wmae", "mae", "baseline_wmae", "coverage_80", "coverage_95", "rows"} <= set(figures)
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == [
        "Store",
        "Dept",
        "Date",
        "IsHoliday",
        "Weekly_Sales",
        "prediction",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]
    assert len(frame) == figures["rows"]
    totals = pd.read_csv(out_totals, dtype={"key": str}, keep_default_na=False)
    assert list(totals.columns) == [
        "level", "key", "Date", "prediction", "lower_80", "upper_80", "lower_95", "upper_95",
    ]  # fmt: skip
    weeks = frame["Date"].nunique()
    assert (totals["level"] == "chain").sum() == weeks and set(
        totals.loc[totals["level"] == "chain", "key"]
    ) == {""}
    assert set(totals.loc[totals["level"] == "store", "key"]) == {str(s) for s in frame["Store"].unique()}
    assert set(totals.loc[totals["level"] == "department", "key"]) == {str(d) for d in frame["Dept"].unique()}
    chain = totals[totals["level"] == "chain"].set_index("Date")["prediction"]
    by_week = frame.groupby("Date")["prediction"].apply(lambda p: (p * 100).round().sum() / 100)
    assert (chain - by_week).abs().max() < 0.006  # the series' forecasts added up, to the cent


def test_submission_follows_test_csv(cli_app, data_dir, tmp_path):
    out = tmp_path / "submission.csv"
    result = cli_app.test_cli_runner().invoke(args=["submission", "--data", str(data_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    sub = pd.read_csv(out)
    test = pd.read_csv(data_dir / "test.csv")
    assert list(sub.columns) == ["Id", "Weekly_Sales"] and len(sub) == len(test)
    assert sub["Id"].iloc[0] == f"{test['Store'].iloc[0]}_{test['Dept'].iloc[0]}_{test['Date'].iloc[0]}"
    assert sub["Weekly_Sales"].notna().all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["backtest", "--origin", "not-a-date", "--horizon", "4"], "not a date"),
        (["backtest", "--origin", "2013-06-07", "--horizon", "4"], "no weeks"),
        (["train", "--through", "1999-01-01"], "before the first sales week"),
        (["train", "--data", "/nonexistent/dir"], "not found"),
        (["train", "--through", "2030-01-04"], "after the last sales week"),
        (["experiment", "--origin", "garbage", "--models", "naive"], "not a date"),
        (
            ["backtest", "--origin", "2012-06-29", "--horizon", "4", "--predictions", "/nonexistent/x.csv"],
            "does not exist",
        ),
        (["backtest", "--origin", "2012-06-29", "--horizon", "4", "--totals", "/tmp"], "directory"),
        (["submission", "--out", "/nonexistent/dir/s.csv"], "does not exist"),
        (["forecast", "publish", "--out", "/nonexistent/dir/x.csv"], "does not exist"),
    ],
)
def test_errors_are_one_line_messages(cli_app, args, message):
    from app.registry.training_runs import list_training_runs

    result = cli_app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert list_training_runs(cli_app.extensions["storage"]) == []  # a mistake records no failed run


def test_backtest_is_recorded_as_a_run(cli_app, data_dir):
    from app.registry.training_runs import list_training_runs

    args = [
        "backtest",
        "--data",
        str(data_dir),
        "--origin",
        "2012-06-29",
        "--horizon",
        "8",
        "--model",
        "naive",
    ]
    result = cli_app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    (run,) = list_training_runs(cli_app.extensions["storage"], run_type="backtest")
    assert run["status"] == "finished" and run["model_kind"] == "naive"
    assert run["metrics"]["wmae"] > 0 and run["params"]["horizon"] == 8


def test_train_registers_production_then_staging_and_takes_actuals(cli_app, data_dir):
    from app.monitoring.actuals import upsert_actuals
    from app.monitoring.sales_check import parse_rows
    from app.registry.versions import list_versions

    runner = cli_app.test_cli_runner()
    assert runner.invoke(args=["models", "production"]).exit_code != 0
    train = ["train", "--data", str(data_dir), "--model", "naive"]
    assert runner.invoke(args=train).exit_code == 0
    assert runner.invoke(args=["models", "production"]).output.startswith("v1 naive")

    storage = cli_app.extensions["storage"]
    actuals = parse_rows([{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 1234.5}])
    with storage.session() as session:
        upsert_actuals(session, actuals)
    result = runner.invoke(args=[*train, "--with-actuals"])
    assert result.exit_code == 0, result.output
    (newest, *_) = list_versions(storage, cli_app.config["MODEL_NAME"])
    assert newest["version"] == 2 and newest["stage"] == "staging"
    metadata = json.loads(Path(newest["artifact_path"]).with_suffix(".json").read_text())
    assert metadata["origin"] == "2012-11-02"  # the ingested week extends the history
    assert runner.invoke(args=["models", "production"]).output.startswith("v1 naive")


def test_every_command_runs_under_the_batch_statement_limits(tmp_path):
    """A publish or an import may run statements for minutes: no command is held to a request's limits."""
    import click

    def commands(app) -> list[click.Command]:
        found, pending = [], list(app.cli.commands.values())
        while pending:
            command = pending.pop()
            if isinstance(command, click.Group):
                pending.extend(command.commands.values())
            else:
                found.append(command)
        return found

    make_test_app(tmp_path)
    every = commands(make_test_app(tmp_path / "second"))  # module-level commands are shared by both
    assert len(every) > 10
    for command in every:
        assert getattr(command.callback, "batch_limits", False), command.name
        assert not getattr(command.callback.__wrapped__, "batch_limits", False), command.name  # once
