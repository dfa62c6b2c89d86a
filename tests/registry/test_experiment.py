"""The experiment runner: the same backtest for every model, each a run, and a gate before production."""

from __future__ import annotations

import pytest

from app.registry import experiment, training_runs, versions
from tests.helpers.registry import register
from tests.helpers.training import SMALL_TRAIN_PARAMS

NAME = "storecast"
PROTOCOL = {"folds": 1, "horizon": 8}


def run(app, dataset, kinds, margin=0.01):
    return experiment.run_experiment(
        app.extensions["storage"],
        dataset,
        model_name=NAME,
        models_dir=app.config["MODELS_DIR"],
        kinds=kinds,
        margin=margin,
        params={"hgb": SMALL_TRAIN_PARAMS},
        by="tests",
        **PROTOCOL,
    )


def test_the_gate_refuses_a_worse_challenger(registry_app, small_dataset, small_artifact):
    storage = registry_app.extensions["storage"]
    run_id = training_runs.start_run(storage, "train", "hgb", params={"model_params": SMALL_TRAIN_PARAMS})
    training_runs.finish_run(
        storage, run_id, artifact_path=small_artifact.path, artifact_sha256=small_artifact.sha256
    )
    production = versions.register_version(
        storage,
        NAME,
        artifact_path=small_artifact.path,
        artifact_sha256=small_artifact.sha256,
        model_kind="hgb",
        run_id=run_id,
        by="tests",
    )
    assert production["stage"] == "production"

    result = run(registry_app, small_dataset, ["naive"])

    assert result.best.kind == "naive"
    assert result.production_wmae is not None and result.best.wmae > result.production_wmae
    assert result.promoted is False
    assert result.version["stage"] == "staging" and result.version["model_kind"] == "naive"
    assert versions.production_version(storage, NAME)["version"] == 1
    assert "not promoted" in result.decision
    # naive candidate, hgb production baseline (same backtest), and the naive training: three runs
    recorded = training_runs.list_training_runs(storage, limit=10)
    kinds = sorted((r["run_type"], r["model_kind"], r["params"].get("role")) for r in recorded[:3])
    assert kinds == [
        ("experiment", "hgb", "production-baseline v1"),
        ("experiment", "naive", "candidate"),
        ("train", "naive", None),
    ]
    assert all(r["status"] == "finished" for r in recorded)
    table = result.format_table()
    assert "naive" in table and "production-baseline" in table and "not promoted" in table


def test_the_gate_promotes_a_better_challenger(registry_app, small_dataset, artifacts):
    storage = registry_app.extensions["storage"]
    naive = run(registry_app, small_dataset, ["naive"])  # no production yet: the winner goes straight in
    assert naive.promoted and naive.version["stage"] == "production"

    result = run(registry_app, small_dataset, ["hgb", "naive"])

    assert result.best.kind == "hgb"
    assert result.production_wmae == pytest.approx(naive.best.wmae)  # reused: same kind, same backtest
    assert result.promoted is True
    assert versions.production_version(storage, NAME)["version"] == result.version["version"] == 2
    change = versions.stage_history(storage, NAME)[0]
    assert change["to_stage"] == "production" and change["reason"].startswith("experiment gate:")
    assert versions.get_version(storage, NAME, 1)["stage"] == "archived"
    # the registered version carries the experiment's backtest and points at its training run
    trained = training_runs.get_training_run(storage, result.version["run_id"])
    assert trained["run_type"] == "train" and trained["artifact_sha256"] == result.version["artifact_sha256"]
    assert result.version["metrics"]["wmae"] == pytest.approx(result.best.wmae)
    # the new production version serves
    assert registry_app.extensions["model_holder"].get().version == "v2"


def test_a_huge_margin_keeps_production(registry_app, small_dataset):
    run(registry_app, small_dataset, ["naive"])
    result = run(registry_app, small_dataset, ["hgb"], margin=0.99)
    assert result.promoted is False and result.version["stage"] == "staging"


def test_a_failing_candidate_is_recorded_and_the_rest_still_compete(registry_app, small_dataset):
    storage = registry_app.extensions["storage"]
    result = experiment.run_experiment(
        storage,
        small_dataset,
        model_name=NAME,
        models_dir=registry_app.config["MODELS_DIR"],
        kinds=["naive", "linear"],
        folds=1,
        horizon=8,
        origin="1999-01-01",  # before the data: every backtest fails
        by="tests",
    )
    assert result.best is None and result.version is None
    failed = training_runs.list_training_runs(storage)
    assert len(failed) == 2 and all(r["status"] == "failed" and r["error"] for r in failed)
    assert "failed" in result.format_table()


def test_unknown_kinds_are_refused(registry_app, small_dataset):
    with pytest.raises(ValueError, match="unknown model kind"):
        run(registry_app, small_dataset, ["xgboost"])


def test_register_helper_used_by_train_hook(registry_app, artifacts):
    # the same first-production rule for artifacts registered by `flask train`
    assert register(registry_app, artifacts[0])["stage"] == "production"
