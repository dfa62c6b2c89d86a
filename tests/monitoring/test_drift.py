"""Drift: shifted inputs are flagged; inputs drawn like the reference are not (checked by simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.monitoring import drift
from app.monitoring.drift import DriftSettings, compute_drift, reference_from_dataset
from app.monitoring.jobs import drift_check
from app.monitoring.prediction_log import log_predictions
from app.storage import DriftReport, DriftResult
from tests.monitoring.conftest import prediction_rows


@pytest.fixture(scope="module")
def reference(small_dataset):
    return reference_from_dataset(small_dataset)


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """The issue's scenario: temperature 15 degrees warmer, every markdown tripled."""
    out = frame.copy()
    out["temperature"] = out["temperature"] + 15
    for k in range(1, 6):
        out[f"markdown{k}"] = out[f"markdown{k}"] * 3
    return out


def test_reference_holds_a_sample_per_numeric_feature_and_counts_for_categories(reference):
    features = reference["features"]
    assert set(drift.NUMERIC_FEATURES) <= set(features)
    assert features["temperature"]["kind"] == "numeric" and len(features["temperature"]["sample"]) <= 2000
    assert features["is_holiday"]["kind"] == "categorical" and set(features["is_holiday"]["counts"]) == {
        "true",
        "false",
    }
    assert "prediction" in reference


@pytest.mark.parametrize(
    "size, numeric_test, categorical_test", [(300, "ks", "chi2"), (3000, "wasserstein", "jensen_shannon")]
)
def test_shifted_inputs_are_flagged(reference, covariate_frame, size, numeric_test, categorical_test):
    window = shifted(covariate_frame.sample(size, random_state=1, replace=True))
    outcome = compute_drift(reference, window, DriftSettings())
    by_name = {r.feature: r for r in outcome.features}
    assert by_name["temperature"].drifted and by_name["temperature"].test == numeric_test
    assert all(by_name[f"markdown{k}"].drifted for k in range(1, 6))
    assert by_name["is_holiday"].test == categorical_test and not by_name["is_holiday"].drifted
    assert outcome.dataset_drift and outcome.features_drifted >= 6
    assert by_name["temperature"].psi > 0.2  # PSI reported alongside, and large


@pytest.mark.parametrize("size", [200, 2500])
def test_false_positive_rate_on_windows_drawn_like_the_reference(reference, covariate_frame, size):
    """100 windows sampled from the training rows: dataset drift in at most 5 of them, any one feature too."""
    rng = np.random.default_rng(size)
    runs, dataset_flags = 100, 0
    feature_flags = dict.fromkeys(reference["features"], 0)
    prediction_flags = 0
    for _ in range(runs):
        window = covariate_frame.sample(size, random_state=int(rng.integers(1 << 31)), replace=True)
        outcome = compute_drift(reference, window, DriftSettings(), predictions=window["weekly_sales"])
        dataset_flags += outcome.dataset_drift
        prediction_flags += outcome.prediction.drifted
        for result in outcome.features:
            feature_flags[result.feature] += result.drifted
    assert dataset_flags / runs <= 0.05
    assert max(feature_flags.values()) / runs <= 0.05, feature_flags
    assert prediction_flags / runs <= 0.05


def test_small_categorical_window_uses_chi_squared_and_flags_a_holiday_flood(reference):
    window = pd.DataFrame({"is_holiday": [True] * 60 + [False] * 40})
    result = drift.check_feature(
        "is_holiday", reference["features"]["is_holiday"], window["is_holiday"], DriftSettings()
    )
    assert result.test == "chi2" and result.drifted and result.p_value < 0.01


def test_too_few_values_are_not_tested(reference):
    result = drift.check_numeric(
        "temperature", reference["features"]["temperature"], [50.0, 51.0], DriftSettings()
    )
    assert result.test == "none" and not result.drifted


def test_psi_is_zero_for_identical_samples_and_grows_with_shift():
    values = np.random.default_rng(0).normal(size=5000)
    assert drift.psi(values, values) == pytest.approx(0.0, abs=1e-9)
    assert drift.psi(values, values + 1) > 0.5


def test_reference_in_other_shapes_is_accepted():
    reference = {
        "temperature": {"values": list(np.random.default_rng(1).normal(50, 10, 500))},
        "fuel_price": {"histogram": {"edges": [2.0, 3.0, 4.0, 5.0], "counts": [10, 80, 10]}},
        "is_holiday": {"shares": {"True": 0.07, "False": 0.93}},
    }
    normalized = drift.normalize_reference(reference)
    assert {k: v["kind"] for k, v in normalized["features"].items()} == {
        "temperature": "numeric",
        "fuel_price": "numeric",
        "is_holiday": "categorical",
    }
    window = pd.DataFrame({"temperature": np.random.default_rng(2).normal(50, 10, 200)})
    assert not compute_drift(reference, window).features[0].drifted


def _log(app, frame: pd.DataFrame) -> None:
    with app.app_context():
        rows = prediction_rows(frame.assign(prediction=frame["weekly_sales"]))
        for start in range(0, len(rows), 500):
            log_predictions(rows[start : start + 500], source="api", request_id=f"r{start}", latency_ms=3)


@pytest.mark.parametrize("size", [400, 8000])
def test_drift_check_over_the_log_flags_the_scenario_and_stores_histograms(
    mon_app, reference, covariate_frame, size
):
    from tests.monitoring.conftest import at

    storage = mon_app.extensions["storage"]
    _log(mon_app, shifted(covariate_frame.sample(size, random_state=3, replace=True)))
    result = drift_check(storage, reference, version="v1", start=at(1), end=at(-1), sample_size=5000, seed=1)
    assert result["rows"] == size and result["sampled"] == min(size, 5000)
    assert result["dataset_drift"]
    with storage.session() as session:
        report = session.get(DriftReport, result["report_id"])
        assert report.dataset_drift and report.features_tested == 10
        results = {r.feature: r for r in session.query(DriftResult).filter_by(report_id=report.id)}
    assert results["temperature"].drifted and "histogram" in results["temperature"].details
    assert "prediction" in results


def test_drift_check_on_unshifted_log_is_quiet(mon_app, reference, covariate_frame):
    from tests.monitoring.conftest import at

    _log(mon_app, covariate_frame.sample(3000, random_state=4, replace=True))
    result = drift_check(mon_app.extensions["storage"], reference, version="v1", start=at(1), end=at(-1))
    assert not result["dataset_drift"] and result["features_drifted"] <= 1


def test_the_core_reference_format_is_read(small_artifact, covariate_frame):
    """The model's metadata["reference_distributions"]: flat, booleans as 0/1, engineered features too."""
    import json

    metadata = json.loads(small_artifact.metadata_path.read_text()) if small_artifact.metadata_path else {}
    reference = small_artifact.metadata.get("reference_distributions") or metadata.get(
        "reference_distributions"
    )
    assert reference, "the core stores reference distributions with the model"
    normalized = drift.normalize_reference(reference)
    assert normalized["features"]["is_holiday"]["kind"] == "categorical"
    assert set(normalized["features"]["is_holiday"]["counts"]) <= {"true", "false"}
    calm = compute_drift(reference, covariate_frame.sample(3000, random_state=5, replace=True))
    loud = compute_drift(reference, shifted(covariate_frame.sample(3000, random_state=5, replace=True)))
    tested = {r.feature for r in calm.features}
    assert "temperature" in tested and "lag52" not in tested  # engineered features are not logged inputs
    assert not calm.dataset_drift and loud.dataset_drift
