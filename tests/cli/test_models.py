"""`flask runs`, `flask models` and `flask experiment` through the CLI runner."""

from __future__ import annotations

from app.registry import training_runs, versions
from tests.helpers.registry import register


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def test_runs_list_and_show(registry_app, small_dataset):
    storage = registry_app.extensions["storage"]
    assert "no runs yet" in invoke(registry_app, "runs", "list").output
    with training_runs.track_run(
        storage, "backtest", "rf", params={"folds": 2}, dataset=small_dataset
    ) as run:
        run.log_metrics({"wmae": 1234.5, "by_bucket": {"1-4": {"wmae": 1000.0}}})
    failed = training_runs.start_run(storage, "train", "hgb")
    training_runs.fail_run(storage, failed, "DataError: train.csv, line 3: bad date")

    listed = invoke(registry_app, "runs", "list")
    assert listed.exit_code == 0
    assert "backtest" in listed.output and "1,234.5" in listed.output and "failed" in listed.output

    assert invoke(registry_app, "runs", "list", "--limit", "0").exit_code == 2  # not "no runs yet"
    shown = invoke(registry_app, "runs", "show", str(run.id))
    assert shown.exit_code == 0
    assert small_dataset.fingerprint() in shown.output and "1-4" in shown.output
    assert "bad date" in invoke(registry_app, "runs", "show", str(failed)).output
    assert '"wmae": 1234.5' in invoke(registry_app, "runs", "show", str(run.id), "--json").output
    missing = invoke(registry_app, "runs", "show", "99")
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_models_commands(registry_app, artifacts):
    storage = registry_app.extensions["storage"]
    assert "no versions" in invoke(registry_app, "models", "list").output
    for artifact in artifacts:
        register(registry_app, artifact)

    listed = invoke(registry_app, "models", "list")
    assert listed.exit_code == 0 and "production" in listed.output and "staging" in listed.output

    promoted = invoke(registry_app, "models", "promote", "v2", "--reason", "better", "--by", "sam")
    assert promoted.exit_code == 0, promoted.output
    assert "v2 is now in production" in promoted.output
    assert versions.production_version(storage, "storecast")["version"] == 2

    rolled = invoke(registry_app, "models", "rollback", "--reason", "regression")
    assert rolled.exit_code == 0 and "v1" in rolled.output
    archived = invoke(registry_app, "models", "archive", "3")
    assert archived.exit_code == 0 and "v3 archived" in archived.output

    refused = invoke(registry_app, "models", "archive", "1")
    assert refused.exit_code != 0 and "is in production" in refused.output
    assert invoke(registry_app, "models", "promote", "v9").exit_code != 0

    history = versions.stage_history(storage, "storecast")
    assert history[0]["changed_by"].startswith("cli:")  # --by defaults to the OS user
    by_sam = [h for h in history if h["changed_by"] == "sam"]
    assert {h["reason"] for h in by_sam} == {"better"}
    assert any(h["reason"] == "regression" for h in history)
    with_history = invoke(registry_app, "models", "list", "--history")
    assert "regression" in with_history.output and "sam" in with_history.output


def test_experiment_command(registry_app, small_dataset, tmp_path):
    from app.forecasting.synthetic import write_kaggle_csvs

    data = tmp_path / "data"
    write_kaggle_csvs(small_dataset, data)
    result = invoke(
        registry_app,
        "experiment",
        "--data",
        str(data),
        "--models",
        "naive,linear",
        "--folds",
        "1",
        "--horizon",
        "8",
    )
    assert result.exit_code == 0, result.output
    assert "naive" in result.output and "linear" in result.output and "WMAE" in result.output
    assert "in production (there was no production model)" in result.output
    storage = registry_app.extensions["storage"]
    assert len(training_runs.list_training_runs(storage, run_type="experiment")) == 2
    assert versions.production_version(storage, "storecast") is not None
    bad = invoke(registry_app, "experiment", "--data", str(data), "--models", "nope")
    assert bad.exit_code != 0 and "unknown model kind" in bad.output
    missing = invoke(registry_app, "experiment", "--data", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0 and "not found" in missing.output
