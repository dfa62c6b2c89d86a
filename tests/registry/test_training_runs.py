"""Runs: what a training, backtest or experiment leaves behind, including a failure and its error."""

from __future__ import annotations

import pytest

from app.registry import training_runs, versions


def test_track_run_records_inputs_outputs_and_duration(storage, small_dataset, small_artifact):
    with training_runs.track_run(
        storage, "train", "hgb", params={"max_iter": 60}, dataset=small_dataset
    ) as run:
        run.log_metrics({"wmae": 1234.5, "by_bucket": {"1-4": {"wmae": 1000.0}}, "predictions": [1, 2, 3]})
        run.log_artifact(small_artifact)
    recorded = training_runs.get_training_run(storage, run.id)
    assert recorded["status"] == "finished" and recorded["error"] is None
    assert recorded["run_type"] == "train" and recorded["model_kind"] == "hgb"
    assert recorded["params"] == {"max_iter": 60}
    assert recorded["data_fingerprint"] == small_dataset.fingerprint()
    assert recorded["data_start"] == str(small_dataset.sales["date"].min().date())
    assert recorded["data_end"] == str(small_dataset.last_week.date())
    assert recorded["metrics"]["wmae"] == 1234.5
    assert "predictions" not in recorded["metrics"]  # per-row bulk stays out of the runs table
    assert recorded["artifact_path"] == str(small_artifact.path)
    assert recorded["artifact_sha256"] == small_artifact.sha256
    assert recorded["duration_s"] is not None and recorded["duration_s"] >= 0
    assert recorded["finished_at"] >= recorded["started_at"]
    assert recorded["code_version"] == training_runs.code_version()
    assert training_runs.code_version()  # the tests run in a git checkout


def test_a_failing_run_is_recorded_with_its_error(storage, small_dataset):
    with (
        pytest.raises(ZeroDivisionError),
        training_runs.track_run(storage, "backtest", "rf", dataset=small_dataset),
    ):
        1 / 0  # noqa: B018
    (failed,) = training_runs.list_training_runs(storage)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("ZeroDivisionError: division by zero")
    assert failed["finished_at"] is not None and failed["metrics"] == {}


def test_a_real_training_failure_is_recorded(storage, small_dataset):
    from app.forecasting.training import train

    with (
        pytest.raises(Exception) as raised,
        training_runs.track_run(storage, "train", "nope", dataset=small_dataset),
    ):
        train(small_dataset, kind="nope")
    (failed,) = training_runs.list_training_runs(storage)
    assert failed["status"] == "failed" and type(raised.value).__name__ in failed["error"]


def test_run_type_is_checked(storage):
    with pytest.raises(ValueError, match="run_type"):
        training_runs.start_run(storage, "deploy", "hgb")


def test_on_model_trained_records_a_run_and_registers(registry_app, storage, artifacts):
    hook = registry_app.extensions["on_model_trained"]
    first = hook(artifacts[0])
    second = hook(artifacts[1])
    assert (first["version"], first["stage"]) == (1, "production")
    assert (second["version"], second["stage"]) == (2, "staging")
    run = training_runs.get_training_run(storage, second["run_id"])
    assert run["run_type"] == "train" and run["status"] == "finished"
    assert run["artifact_sha256"] == artifacts[1].sha256
    assert run["artifact_path"] == str(artifacts[1].path)
    assert run["model_kind"] == artifacts[1].metadata.get("kind", "hgb")
    history = versions.stage_history(storage, "storecast")
    assert history[0]["changed_by"].startswith("cli:") and history[0]["reason"] == "flask train"


def test_list_runs_filters(storage):
    for run_type in ("train", "backtest", "experiment", "experiment"):
        training_runs.finish_run(
            storage, training_runs.start_run(storage, run_type, "hgb"), metrics={"wmae": 1.0}
        )
    assert len(training_runs.list_training_runs(storage)) == 4
    assert [r["run_type"] for r in training_runs.list_training_runs(storage, run_type="experiment")] == [
        "experiment"
    ] * 2
    assert len(training_runs.list_training_runs(storage, limit=1)) == 1
    assert training_runs.get_training_run(storage, 999) is None
