"""One dataset, no mixing: versions record their data, a model of other data never replaces
production by itself, and a stale production is flagged."""

from __future__ import annotations

import datetime as dt

from app.forecasting.synthetic import generate_dataset
from app.monitoring import actuals
from app.registry import experiment, lineage, training_runs, versions
from app.storage import ActualSale, Run
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import make_test_app
from tests.helpers.registry import register

NAME = "storecast"
LINEAGE_A, LINEAGE_B = "a" * 16, "b" * 16


def _register(app, artifact, lineage, source, stage=None, reason=""):
    return versions.register_version(
        app.extensions["storage"],
        NAME,
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind="hgb",
        metrics={"wmae": 100.0},
        stage=stage,
        by="tests",
        reason=reason,
        data_source=source,
        data_lineage=lineage,
    )


def test_versions_record_their_data_and_show_it(registry_app, storage, artifacts):
    first = _register(registry_app, artifacts[0], LINEAGE_A, "/data/walmart")
    assert (first["data_source"], first["data_lineage"]) == ("/data/walmart", LINEAGE_A)
    assert versions.get_version(storage, NAME, 1)["data_lineage"] == LINEAGE_A
    client = registry_app.test_client()
    listed = client.get("/api/v1/models").get_json()["versions"][0]
    # anonymous callers see the data's name, not the server's path; an admin the whole path
    assert (listed["data_source"], listed["data_lineage"]) == ("walmart", LINEAGE_A)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (
        client.get("/api/v1/models", headers=admin).get_json()["versions"][0]["data_source"]
        == "/data/walmart"
    )
    assert client.get("/api/v1/models/v1").get_json()["data_lineage"] == LINEAGE_A
    page = client.get("/models").get_data(as_text=True)
    assert "walmart" in page and "/data/walmart" not in page and LINEAGE_A in page
    card = client.get("/models/1").get_data(as_text=True)
    assert "walmart" in card and "/data/walmart" not in card and LINEAGE_A in card


def test_a_new_version_goes_to_staging_whatever_its_data(registry_app, storage, artifacts):
    _register(registry_app, artifacts[0], LINEAGE_A, "synthetic(seed=0)")
    same = _register(registry_app, artifacts[1], LINEAGE_A, "synthetic(seed=0) + 5 actual_sales rows")
    assert same["stage"] == "staging"
    other = _register(registry_app, artifacts[2], LINEAGE_B, "/data/walmart", reason="flask train")
    assert other["stage"] == "staging"
    stages = {row["version"]: row["stage"] for row in versions.list_versions(storage, NAME)}
    assert stages == {1: "production", 2: "staging", 3: "staging"}
    history = {(h["label"], h["to_stage"]): h["reason"] for h in versions.stage_history(storage, NAME)}
    assert history[("v3", "staging")] == (
        f"flask train; trained on other data than production v1: walmart (lineage {LINEAGE_B})"
    )
    assert lineage.production_lineage(storage, NAME) == LINEAGE_A


def test_check_data_statuses(registry_app, storage, artifacts, tmp_path):
    assert lineage.check_data(storage, NAME, LINEAGE_A, "x")["status"] == "no-production"
    _register(registry_app, artifacts[0], LINEAGE_A, "/data/walmart")
    assert lineage.check_data(storage, NAME, LINEAGE_A, "/data/walmart")["status"] == "same"
    different = lineage.check_data(storage, NAME, LINEAGE_B, "synthetic(seed=0)")
    assert different["status"] == "different" and different["production"] == "v1"
    assert "/data/walmart" in different["message"] and LINEAGE_B in different["message"]


def test_a_version_registered_before_lineages_is_judged_by_its_run_source(tmp_path, small_artifact):
    """Upgrading a database whose production predates lineage records: the run's data source decides."""
    app = make_test_app(tmp_path)
    storage = app.extensions["storage"]
    legacy = tmp_path / "legacy.joblib"  # no metadata sidecar either
    legacy.write_bytes(small_artifact.path.read_bytes())
    run_id = training_runs.start_run(
        storage, "train", "hgb", data_source="synthetic(seed=0, n_stores=45, n_depts=81)"
    )
    versions.register_version(
        storage, NAME, artifact_path=legacy, artifact_sha256=small_artifact.sha256, model_kind="hgb",
        run_id=run_id, by="tests",
    )  # fmt: skip
    check = lineage.check_data(storage, NAME, LINEAGE_B, "/work/shared/data/walmart")
    assert check["status"] == "different" and check["production_lineage"] is None
    assert lineage.check_data(storage, NAME, LINEAGE_B, "synthetic(seed=0, n_stores=45, n_depts=81)")[
        "status"
    ] == "same"  # fmt: skip


def test_an_experiment_on_other_data_stays_in_staging_without_the_gate(registry_app, small_artifact):
    storage = registry_app.extensions["storage"]
    register(registry_app, small_artifact)  # seed 7: its sidecar metadata records the lineage
    other = generate_dataset(seed=8, n_stores=4, n_depts=6)
    result = experiment.run_experiment(
        storage, other, model_name=NAME, models_dir=registry_app.config["MODELS_DIR"], kinds=["naive"],
        folds=1, horizon=8, by="tests",
    )  # fmt: skip
    assert not result.promoted and result.version["stage"] == "staging"
    assert "other data" in result.decision
    assert [c.role for c in result.candidates] == ["candidate"]  # no baseline of another dataset's model
    assert lineage.production_lineage(storage, NAME) != other.lineage()


def _production_with_run(app, artifact, data_end: dt.date, lineage=LINEAGE_A):
    storage = app.extensions["storage"]
    run_id = training_runs.start_run(storage, "train", "hgb", data_source="/data/walmart")
    training_runs.finish_run(storage, run_id, artifact_path=artifact.path, artifact_sha256=artifact.sha256)
    with storage.session() as session:
        session.get(Run, run_id).data_end = data_end
    return versions.register_version(
        storage, NAME, artifact_path=artifact.path, artifact_sha256=artifact.sha256, model_kind="hgb",
        run_id=run_id, by="tests", data_source="/data/walmart", data_lineage=lineage,
    )  # fmt: skip


def _actual_weeks(app, *weeks: str) -> None:
    rows = [{"store": 1, "dept": 1, "date": week, "weekly_sales": 100.0} for week in weeks]
    with app.extensions["storage"].session() as session:
        actuals.import_rows(session, rows, model_name=NAME)


def test_staleness_counts_weeks_to_the_newest_actual_of_its_lineage(registry_app, storage, artifacts):
    assert lineage.staleness(storage, NAME, 4) is None
    _production_with_run(registry_app, artifacts[0], dt.date(2012, 10, 26))
    fresh = lineage.staleness(storage, NAME, 4)
    assert fresh["stale"] is False and fresh["weeks_behind"] is None and fresh["data_end"] == "2012-10-26"
    _actual_weeks(registry_app, "2012-11-02", "2012-11-23")  # 4 weeks after: not more than 4
    assert lineage.staleness(storage, NAME, 4) == {
        "version": "v1",
        "lineage": LINEAGE_A,
        "data_end": "2012-10-26",
        "newest_actual_week": "2012-11-23",
        "weeks_behind": 4,
        "stale_after_weeks": 4,
        "stale": False,
    }
    _actual_weeks(registry_app, "2012-11-30")
    stale = lineage.staleness(storage, NAME, 4)
    assert stale["stale"] is True and stale["weeks_behind"] == 5
    assert lineage.staleness(storage, NAME, 8)["stale"] is False


def test_actuals_of_another_lineage_do_not_make_production_stale(registry_app, storage, artifacts):
    _production_with_run(registry_app, artifacts[0], dt.date(2012, 10, 26))
    _actual_weeks(registry_app, "2012-11-02")
    with storage.session() as session:
        session.add(
            ActualSale(store=9, dept=9, week=dt.date(2013, 6, 7), weekly_sales=1.0, lineage=LINEAGE_B)
        )
    assert lineage.staleness(storage, NAME, 4)["newest_actual_week"] == "2012-11-02"


def test_the_stale_flag_is_on_the_models_page_and_the_model_cards(registry_app, artifacts):
    registry_app.config["STALE_AFTER_WEEKS"] = 2
    _production_with_run(registry_app, artifacts[0], dt.date(2012, 10, 26))
    client = registry_app.test_client()
    assert "is stale" not in client.get("/models").get_data(as_text=True)
    _actual_weeks(registry_app, "2012-11-16")
    page = client.get("/models").get_data(as_text=True)
    assert "v1 is stale" in page and "3 weeks before the newest actual sales week" in page
    card = client.get("/models/v1").get_data(as_text=True)
    assert 'data-testid="stale"' in card and "limit is 2 weeks" in card
    served = client.get("/model").get_data(as_text=True)  # the production model's own page says it too
    assert 'data-testid="stale"' in served and "3 weeks before the newest actual sales week" in served
