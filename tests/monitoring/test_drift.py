"""Drift: shifted inputs are flagged; inputs drawn like the reference are not (checked by simulation)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from app.monitoring import drift
from app.monitoring.drift import DriftSettings, compute_drift, reference_from_dataset
from app.monitoring.drift_report import drift_check
from app.monitoring.prediction_log import log_predictions
from app.storage import DriftReport, DriftResult
from tests.helpers.data import REAL_DATA_DIR
from tests.helpers.drift import shifted
from tests.helpers.predictions import prediction_rows


@pytest.fixture(scope="module")
def reference(small_dataset):
    return reference_from_dataset(small_dataset)


def test_reference_is_seasonal_per_store_and_saved_in_one_format(reference):
    features = reference["features"]
    assert reference["format"] == "seasonal-1" and reference["stores"] == [1, 2, 3, 4]
    assert features["temperature"]["kind"] == "seasonal" and len(features["temperature"]["center"][0]) == 52
    assert len(features["temperature"]["sample"]) <= 2000
    assert {features[c]["kind"] for c in ("cpi", "fuel_price", "unemployment")} == {"trend"}
    assert features["is_holiday"]["kind"] == "holiday" and "prediction" in reference


@pytest.mark.parametrize(
    "small_max, numeric_test, categorical_test",
    [(1000, "ks", "chi2"), (100, "wasserstein", "jensen_shannon")],
)
def test_shifted_inputs_are_flagged(reference, covariate_frame, small_max, numeric_test, categorical_test):
    window = shifted(covariate_frame.sample(3000, random_state=1, replace=True))
    outcome = compute_drift(reference, window, DriftSettings(small_sample_max=small_max))
    by_name = {r.feature: r for r in outcome.features}
    assert by_name["temperature"].drifted and by_name["temperature"].test == numeric_test
    assert by_name["is_holiday"].test == categorical_test and not by_name["is_holiday"].drifted
    assert by_name["temperature"].psi > 0.2  # PSI reported alongside, and large
    assert by_name["temperature"].sample_size <= len(window.drop_duplicates(["store", "date"]))


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


def test_forecast_weeks_of_another_season_and_a_later_year_are_not_drift(reference, covariate_frame):
    """Summer inputs only, CPI and fuel a year further up their trend: like with like, no alarm."""
    summer = covariate_frame[covariate_frame["date"].dt.month.isin([6, 7, 8])].sample(
        2000, random_state=2, replace=True
    )
    later = summer.assign(
        date=summer["date"] + pd.Timedelta(weeks=52),
        cpi=summer["cpi"] * 1.02,
        fuel_price=summer["fuel_price"] + 0.1,
    )
    outcome = compute_drift(reference, later, DriftSettings())
    assert not outcome.dataset_drift, [(r.feature, r.statistic) for r in outcome.features if r.drifted]
    assert not any(r.drifted for r in outcome.features)


def test_a_holiday_flood_is_flagged(reference):
    weeks = pd.date_range("2012-03-02", periods=100, freq="7D")
    result = drift.check_holiday(
        "is_holiday",
        reference["features"]["is_holiday"],
        drift.calendar.week_index(pd.Series(weeks)),
        [True] * 60 + [False] * 40,
        DriftSettings(),
    )
    assert result.test == "chi2" and result.drifted and result.p_value < 0.01


def test_too_few_values_are_not_tested(reference):
    result = drift.check_seasonal(
        "temperature", reference["features"]["temperature"], np.array([0.1, 2.0]), DriftSettings()
    )
    assert result.test == "none" and not result.drifted


def test_psi_is_zero_for_identical_samples_and_grows_with_shift():
    values = np.random.default_rng(0).normal(size=5000)
    assert drift.psi(values, values) == pytest.approx(0.0, abs=1e-9)
    assert drift.psi(values, values + 1) > 0.5


def test_a_reference_of_another_format_is_refused(covariate_frame):
    with pytest.raises(ValueError, match="format"):
        compute_drift({"temperature": {"values": [1.0, 2.0]}}, covariate_frame.head(50))


def _log(app, frame: pd.DataFrame) -> None:
    with app.app_context():
        rows = prediction_rows(frame.assign(prediction=frame["weekly_sales"]))
        for start in range(0, len(rows), 500):
            log_predictions(
                app.extensions["storage"],
                rows[start : start + 500],
                source="api",
                request_id=f"r{start}",
                latency_ms=3,
            )


@pytest.mark.parametrize("size", [400, 8000])
def test_drift_check_over_the_log_flags_the_scenario_and_stores_histograms(
    mon_app, reference, covariate_frame, size
):
    from tests.helpers.clock import at

    storage = mon_app.extensions["storage"]
    _log(mon_app, shifted(covariate_frame.sample(size, random_state=3, replace=True)))
    result = drift_check(storage, reference, version="v1", start=at(1), end=at(-1), sample_size=5000, seed=1)
    assert result["rows"] == size and result["sampled"] == min(size, 5000)
    assert result["dataset_drift"]  # temperature 15 degrees off the season; markdowns have one season only
    with storage.session() as session:
        report = session.get(DriftReport, result["report_id"])
        assert report.dataset_drift and report.features_tested >= 5
        results = {r.feature: r for r in session.query(DriftResult).filter_by(report_id=report.id)}
    assert results["temperature"].drifted and "histogram" in results["temperature"].details
    assert "prediction" in results


def test_drift_check_on_unshifted_log_is_quiet(mon_app, reference, covariate_frame):
    from tests.helpers.clock import at

    _log(mon_app, covariate_frame.sample(3000, random_state=4, replace=True))
    result = drift_check(mon_app.extensions["storage"], reference, version="v1", start=at(1), end=at(-1))
    assert not result["dataset_drift"] and result["features_drifted"] <= 1


def test_the_reference_saved_at_training_is_used(small_artifact, covariate_frame):
    """The model's metadata["reference"] (built by training from its covariate grid) is the one format."""
    reference = small_artifact.metadata["reference"]
    assert reference["format"] == "seasonal-1" and "reference_distributions" not in small_artifact.metadata
    calm = compute_drift(reference, covariate_frame.sample(3000, random_state=5, replace=True))
    loud = compute_drift(reference, shifted(covariate_frame.sample(3000, random_state=5, replace=True)))
    tested = {r.feature for r in calm.features}
    assert "temperature" in tested and "lag52" not in tested  # engineered features are not logged inputs
    assert not calm.dataset_drift and loud.dataset_drift


def _grid(dataset):
    from app.forecasting.covariates import Covariates

    first = int(drift.calendar.week_index(dataset.sales["date"]).min())
    return Covariates.build(dataset, first, int(drift.calendar.week_index(dataset.features["date"]).max()))


def _weeks_after_sales(dataset, weeks: int = 4) -> pd.DataFrame:
    """Features-table rows of the first weeks after the last sales week: what would be ingested."""
    last = dataset.sales["date"].max()
    dates = pd.date_range(last + pd.Timedelta(weeks=1), periods=weeks, freq="7D")
    return dataset.features[dataset.features["date"].isin(dates)].reset_index(drop=True)


def test_actual_covariates_as_assumed_are_quiet_and_injected_shifts_are_flagged(small_dataset, reference):
    covariates = _grid(small_dataset)
    actual = _weeks_after_sales(small_dataset)
    quiet = drift.compare_actuals(reference, actual, covariates)
    assert quiet and not any(r.drifted for r in quiet)
    warm = actual.copy()
    warm.loc[warm["store"].isin([1, 2, 3]), "temperature"] += 15
    by_name = {r.feature: r for r in drift.compare_actuals(reference, warm, covariates)}
    assert by_name["actual:temperature"].drifted
    assert set(by_name["actual:temperature"].details["stores_off"]) == {"1", "2", "3"}
    tripled = actual.assign(**{f"markdown{k}": actual[f"markdown{k}"] * 3 for k in range(1, 6)})
    flagged = {r.feature for r in drift.compare_actuals(reference, tripled, covariates) if r.drifted}
    assert {f"actual:markdown{k}" for k in range(1, 6)} & flagged
    one_store = actual.copy()
    one_store.loc[one_store["store"] == 1, "temperature"] += 15
    assert not {r.feature: r for r in drift.compare_actuals(reference, one_store, covariates)}[
        "actual:temperature"
    ].drifted  # one store alone is reported in details, not flagged


def test_drift_check_compares_ingested_covariates_and_the_alert_opens(mon_app, small_dataset, reference):
    from app.monitoring import actual_features, alerts

    storage = mon_app.extensions["storage"]
    warm = _weeks_after_sales(small_dataset)
    warm.loc[warm["store"].isin([2, 3, 4]), "temperature"] += 15
    with storage.session() as session:
        actual_features.upsert_features(session, warm)
    result = drift_check(
        storage, reference, version="v1", start=at(1), end=at(-1), covariates=_grid(small_dataset)
    )
    assert result["dataset_drift"] and result["actual_features_off"] == ["actual:temperature"]
    with storage.session() as session:
        opened = alerts.evaluate(session, mon_app.config)
        assert "drift" in opened
        stored = {r.feature: r for r in session.query(DriftResult).filter_by(report_id=result["report_id"])}
    assert stored["actual:temperature"].drifted and stored["actual:temperature"].test == "assumed_gap"


def at(hours_ago: float = 0.0):
    from tests.helpers.clock import at as _at

    return _at(hours_ago)


REPLAY_ORIGIN = "2012-01-27"
REPLAY_WEEKS = pd.date_range("2012-02-03", "2012-10-26", freq="7D")


@pytest.fixture(scope="module")
def replay():
    """The real data as a model trained through 2012-01-27 sees it: its covariate grid and drift reference.

    Built by the functions train() uses (the estimator plays no part in the covariates the forecaster
    resolves, so the replay does not fit one and stays well under a minute).
    """
    from app.forecasting import calendar
    from app.forecasting.data import load_dataset
    from app.forecasting.holdout import build_covariates
    from app.forecasting.panel import Panel
    from app.forecasting.reference import build_reference

    dataset = load_dataset(REAL_DATA_DIR)
    through = dataset.through(REPLAY_ORIGIN)
    panel = Panel.from_sales(through.sales)
    covariates = build_covariates(through, panel, panel.last_week)
    last = int(calendar.week_index(pd.Series([REPLAY_WEEKS[-1]]))[0])
    return dataset, covariates.extended(last + 52), build_reference(covariates, panel.last_week)


def _replay_week(replay, week: pd.Timestamp, actual_change=None) -> drift.DriftOutcome:
    """Week `week` of the replay: forecasts 1..52 weeks ahead for every store, the last 4 weeks' actuals."""
    from app.forecasting import calendar

    dataset, covariates, reference = replay
    origin = int(calendar.week_index(pd.Series([week]))[0])
    targets = np.arange(origin + 1, origin + 53)
    stores = np.repeat(covariates.stores, len(targets))
    weeks = np.tile(targets, len(covariates.stores))
    values = drift.assumed_covariates(covariates, stores, weeks)
    logged = pd.DataFrame(values, columns=drift.COVARIATE_COLUMNS).assign(
        store=stores,
        week=calendar.week_date(weeks),
        is_holiday=covariates.holiday[covariates.store_pos(stores), weeks - covariates.first_week],
    )
    features = dataset.features
    actual = features[(features["date"] > week - pd.Timedelta(weeks=4)) & (features["date"] <= week)]
    if actual_change is not None:
        actual = actual_change(actual.copy())
    return compute_drift(reference, logged, DriftSettings(), actual=actual, covariates=covariates)


@pytest.mark.real_data
def test_real_2012_replay_raises_no_drift_alert_and_injected_shifts_are_flagged(replay):
    outcomes = {week: _replay_week(replay, week) for week in REPLAY_WEEKS}
    alarms = [str(week.date()) for week, outcome in outcomes.items() if outcome.dataset_drift]
    feature_flags = sum(o.features_drifted for o in outcomes.values())
    actual_flags = sum(r.drifted for o in outcomes.values() for r in o.actual_features)
    logging.getLogger(__name__).info(
        f"replay: {len(outcomes)} weeks, {len(alarms)} dataset alarms, {feature_flags} input flags, "
        f"{actual_flags} actual-vs-assumed flags"
    )
    assert alarms == [] and actual_flags == 0
    assert all(o.features_tested >= 5 for o in outcomes.values())

    def warmer(actual: pd.DataFrame) -> pd.DataFrame:
        actual.loc[actual["store"].isin([5, 20, 33]), "temperature"] += 15
        return actual

    def tripled(actual: pd.DataFrame) -> pd.DataFrame:
        for k in range(1, 6):
            actual[f"markdown{k}"] *= 3
        return actual

    for week in REPLAY_WEEKS[::8]:
        warm = _replay_week(replay, week, warmer)
        off = {r.feature: r for r in warm.actual_features}["actual:temperature"]
        assert warm.dataset_drift and off.drifted and set(off.details["stores_off"]) == {"5", "20", "33"}
        marked = _replay_week(replay, week, tripled)
        flagged = {r.feature for r in marked.actual_features if r.drifted}
        assert marked.dataset_drift and {f"actual:markdown{k}" for k in range(1, 6)} <= flagged
