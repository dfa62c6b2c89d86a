"""A deployment knows its data: the first set-up records it in the instance file and the registry, other
data stops every command that would train (production unchanged), and `flask models switch-data`
changes it, archiving the old versions with the reason."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from app.cli.data import DATA_REFUSED_EXIT
from app.cli.models import NO_PRODUCTION_EXIT
from app.forecasting.synthetic import generate_dataset, write_kaggle_csvs
from app.jobs import tasks
from app.registry import data_source, lineage, training_runs, versions
from tests.helpers.app import make_test_app
from tests.helpers.training import TINY_TRAIN_PARAMS

NAME = "storecast"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    """Two small datasets as Kaggle CSVs: seed 7 and seed 8 have different lineages."""
    dirs = {}
    for seed in (7, 8):
        directory = tmp_path_factory.mktemp(f"kaggle{seed}")
        write_kaggle_csvs(generate_dataset(seed=seed, n_stores=4, n_depts=6), directory)
        dirs[seed] = directory.resolve()
    return dirs


@pytest.fixture
def app(tmp_path):
    return make_test_app(tmp_path, TRAIN_PARAMS=TINY_TRAIN_PARAMS)


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=[str(arg) for arg in args])


def _stages(app) -> dict[int, str]:
    rows = versions.list_versions(app.extensions["storage"], NAME)
    return {row["version"]: row["stage"] for row in rows}


def test_the_first_train_records_the_data_and_other_data_is_refused(app, data_dirs):
    first, second = data_dirs[7], data_dirs[8]
    storage = app.extensions["storage"]
    trained = invoke(app, "train", "--data", first, "--model", "naive")
    assert trained.exit_code == 0, trained.output
    assert "registered v1 in production: there was no production model yet" in trained.output
    recorded = data_source.recorded(storage, NAME)
    assert (recorded.kind, recorded.source, recorded.reason) == ("directory", str(first), "first set-up")
    on_file = json.loads(Path(app.config["DATA_SOURCE_FILE"]).read_text())
    assert on_file["source"] == str(first) and on_file["lineage"] == recorded.lineage

    run_count = len(training_runs.list_training_runs(storage))
    for args in (("--data", second), ()):  # another directory, and no data at all (the synthetic default)
        refused = invoke(app, "train", *args, "--model", "naive")
        assert refused.exit_code == DATA_REFUSED_EXIT, refused.output
        assert f"this deployment forecasts from the directory {first}" in refused.output
        assert "nothing was trained and production is unchanged" in refused.output
        assert f"pass --data {first}" in refused.output
    assert f"`flask models switch-data --data {second}`" in invoke(app, "train", "--data", second).output
    assert "`flask models switch-data --synthetic`" in invoke(app, "train").output
    assert _stages(app) == {1: "production"} and len(training_runs.list_training_runs(storage)) == run_count

    again = invoke(app, "train", "--data", first, "--model", "naive")
    assert again.exit_code == 0, again.output
    assert "registered v2 in staging: production v1 is kept; promote with `flask models promote v2`" in (
        again.output
    )


def test_check_data_records_the_first_data_and_stops_on_other_data(app, data_dirs):
    first, second = data_dirs[7], data_dirs[8]
    result = invoke(app, "models", "check-data", "--data", first)
    assert result.exit_code == NO_PRODUCTION_EXIT and "no production model yet" in result.output
    assert data_source.recorded(app.extensions["storage"], NAME).source == str(first)
    refused = invoke(app, "models", "check-data", "--data", second)
    assert refused.exit_code == DATA_REFUSED_EXIT and str(first) in refused.output
    assert invoke(app, "train", "--data", first, "--model", "naive").exit_code == 0
    same = invoke(app, "models", "check-data", "--data", first)
    assert same.exit_code == 0 and "production v1 was trained on this data" in same.output


def test_the_switch_trains_the_new_data_and_archives_the_old_versions_with_the_reason(app, data_dirs):
    first, second = data_dirs[7], data_dirs[8]
    storage = app.extensions["storage"]
    for _ in range(2):
        assert invoke(app, "train", "--data", first, "--model", "naive").exit_code == 0
    assert invoke(app, "models", "switch-data").exit_code != 0  # which data: --data or --synthetic
    switched = invoke(app, "models", "switch-data", "--data", second, "--model", "naive", "--by", "sam")
    assert switched.exit_code == 0, switched.output
    assert "v3 is in production" in switched.output
    assert _stages(app) == {1: "archived", 2: "archived", 3: "production"}
    reasons = {(h["label"], h["to_stage"]): h for h in versions.stage_history(storage, NAME)}
    for label in ("v1", "v2"):
        archived = reasons[(label, "archived")]
        assert archived["changed_by"] == "sam"
        assert archived["reason"].startswith("data switched by sam at ")
        assert archived["reason"].endswith(f": {first.name} -> {second.name}")  # names, not server paths
    assert (
        lineage.production_lineage(storage, NAME) == generate_dataset(seed=8, n_stores=4, n_depts=6).lineage()
    )
    assert data_source.recorded(storage, NAME).source == str(second)
    assert json.loads(Path(app.config["DATA_SOURCE_FILE"]).read_text())["source"] == str(second)

    assert invoke(app, "train", "--data", second, "--model", "naive").exit_code == 0
    refused = invoke(app, "train", "--data", first, "--model", "naive")
    assert (
        refused.exit_code == DATA_REFUSED_EXIT and f"forecasts from the directory {second}" in refused.output
    )
    back = invoke(app, "models", "promote", "v1")  # a version of the old data cannot come back by promotion
    assert back.exit_code != 0 and "switch-data" in back.output
    assert invoke(app, "models", "switch-data", "--data", second).exit_code != 0  # already its data


def test_a_new_registry_keeps_the_instance_files_choice(tmp_path, data_dirs):
    first, second = data_dirs[7], data_dirs[8]
    shared = {
        "DATA_SOURCE_FILE": str(tmp_path / "instance" / "data-source.json"),
        "TRAIN_PARAMS": TINY_TRAIN_PARAMS,
    }
    old = make_test_app(tmp_path / "old", **shared)
    assert invoke(old, "train", "--data", first, "--model", "naive").exit_code == 0
    fresh = make_test_app(tmp_path / "fresh", **shared)  # another database, the same instance folder
    refused = invoke(fresh, "train", "--data", second, "--model", "naive")
    assert refused.exit_code == DATA_REFUSED_EXIT and str(first) in refused.output
    recorded = data_source.recorded(fresh.extensions["storage"], NAME)
    assert recorded.reason == "from the instance configuration" and recorded.source == str(first)


def test_an_upgraded_registry_takes_productions_data_as_the_deployments(app, data_dirs, small_artifact):
    first = generate_dataset(seed=7, n_stores=4, n_depts=6)
    versions.register_version(
        app.extensions["storage"], NAME, artifact_path=small_artifact.path,
        artifact_sha256=small_artifact.sha256, model_kind="hgb", by="tests",
        data_source=f"{data_dirs[7]} + 12 actual_sales rows", data_lineage=first.lineage(),
    )  # fmt: skip
    refused = invoke(app, "models", "check-data")  # the synthetic default, as a plain `make run`
    assert refused.exit_code == DATA_REFUSED_EXIT
    assert f"forecasts from the directory {data_dirs[7]}" in refused.output
    assert data_source.recorded(app.extensions["storage"], NAME).reason == "the data of production v1"
    assert invoke(app, "models", "check-data", "--data", data_dirs[7]).exit_code == 0


def test_replay_and_the_retrain_job_refuse_other_data(tmp_path, data_dirs):
    first, second = data_dirs[7], data_dirs[8]
    app = make_test_app(
        tmp_path, TRAIN_PARAMS=TINY_TRAIN_PARAMS, RETRAIN_ENABLED=True, STORECAST_DATA=str(second)
    )
    assert invoke(app, "train", "--data", first, "--model", "naive").exit_code == 0
    replay = invoke(app, "replay", "--data", second, "--start", "2012-06-29", "--weeks", "1")
    assert replay.exit_code == DATA_REFUSED_EXIT and str(first) in replay.output
    outcome = tasks.run_job(app.extensions["jobs"], "retrain", manual=True)
    assert outcome.error is not None and "DataSourceMismatch" in outcome.error
    assert f"forecasts from the directory {first.name}" in outcome.error
    assert str(first.parent) not in outcome.error  # the job's error names directories, not server paths
    assert _stages(app) == {1: "production"}


def test_make_run_with_other_data_stops_before_training(tmp_path, data_dirs):
    """`make run` (scripts/run.sh) after a set-up on a directory, now without STORECAST_DATA."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "STORECAST_DATA"}
    env.update(
        PORT=str(port),
        SECRET_KEY="test",
        STORECAST_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'storecast.db'}",
        MODELS_DIR=str(tmp_path / "models"),
    )
    flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi"]
    for args in (["db", "upgrade"], ["train", "--data", str(data_dirs[7]), "--model", "naive"]):
        subprocess.run([*flask, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "instance" / "data-source.json").exists()
    result = subprocess.run(
        [str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == DATA_REFUSED_EXIT, result.stdout + result.stderr
    assert f"forecasts from the directory {data_dirs[7]}" in result.stderr
    assert "flask models switch-data --synthetic" in result.stderr
    assert "training a model" not in result.stdout and "serving" not in result.stdout
    production = subprocess.run(
        [*flask, "models", "production"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert production.stdout.startswith("v1 naive")
