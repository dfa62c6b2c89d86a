"""The retrain gate: a refit is judged on recent weeks against the production model as it serves."""

from __future__ import annotations

import pandas as pd

from app.loop.history import production_forecaster
from app.loop.retrain import retrain_through_gate
from app.registry import versions
from tests.helpers.training import TINY_TRAIN_PARAMS


def _gate(app, dataset, margin: float) -> dict:
    storage = app.extensions["storage"]
    return retrain_through_gate(
        storage,
        dataset,
        production_forecaster(storage, app.config["MODEL_NAME"]),
        model_name=app.config["MODEL_NAME"],
        models_dir=app.config["MODELS_DIR"],
        kind="hgb",
        params=TINY_TRAIN_PARAMS,
        margin=margin,
    )


def test_a_refit_that_clears_the_gate_is_registered_and_promoted(loop_app, small_dataset, held_back_start):
    result = _gate(loop_app, small_dataset, margin=-1.0)  # any refit clears a margin of -100%
    # production knows sales to 12 weeks before the end: the refit learns from 6 of them, both forecast 6
    assert result["holdout_weeks"] == 6 and result["origin"] == str(
        (held_back_start + pd.Timedelta(weeks=6)).date()
    )
    assert result["rows"] > 0 and result["candidate_wmae"] > 0 and result["production_wmae"] > 0
    assert result["promoted"] and result["gate"].startswith("promoted v2")
    storage, name = loop_app.extensions["storage"], loop_app.config["MODEL_NAME"]
    assert versions.production_version(storage, name)["label"] == "v2"
    reasons = [change["reason"] for change in versions.stage_history(storage, name, 2)]
    assert any(reason.startswith("retrain gate:") for reason in reasons)


def test_a_refit_that_does_not_clear_the_gate_changes_nothing(loop_app, small_dataset):
    result = _gate(loop_app, small_dataset, margin=1.0)  # nothing beats production by 100%
    assert not result["promoted"] and result["gate"].startswith("not promoted")
    storage = loop_app.extensions["storage"]
    assert [v["label"] for v in versions.list_versions(storage, loop_app.config["MODEL_NAME"])] == ["v1"]


def test_no_test_when_production_already_knows_the_weeks(loop_app, small_dataset, held_back_start):
    known = small_dataset.through(held_back_start)
    result = _gate(loop_app, known, margin=0.01)
    assert not result["promoted"] and "no test" in result["gate"]
