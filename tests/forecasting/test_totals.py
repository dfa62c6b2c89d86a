"""Totals at every level: the sum of their series to the cent, and intervals that cover what they claim
when series err together (the chain's and departments' calibrated on past totals of their own level)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.forecasting.artifacts import load_forecaster
from app.forecasting.backtest import run_backtest
from app.forecasting.forecaster import ForecastError
from app.forecasting.intervals import IntervalCalibrator
from app.forecasting.synthetic import generate_dataset
from app.forecasting.totals import LEVELS, HeldOut, Newer, fit_levels, half_widths, in_cents
from tests.helpers.training import TINY_TRAIN_PARAMS

STORES, DEPTS, HORIZONS = 8, 10, 13


@pytest.fixture(scope="module")
def fc(small_artifact):
    return load_forecaster(small_artifact.path, small_artifact.sha256)


def _held_out(seed: int, origins: int, chain: float = 0.8, store: float = 0.5, dept: float = 0.0) -> HeldOut:
    """Errors of STORES x DEPTS series forecast 1..HORIZONS weeks from each origin, sharing a chain-wide
    and a per-store shock each week on top of their own, and the first half of the departments a shock
    of their own (`dept`: their stores err together); every row's 80% half-width is 1."""
    rng = np.random.default_rng(seed)
    o, h, s, d = np.meshgrid(
        np.arange(origins), np.arange(1, HORIZONS + 1), np.arange(STORES), np.arange(DEPTS), indexing="ij"
    )
    own = rng.normal(0, 1 / 1.2816, o.shape)  # an 80% half-width of 1
    shared_chain = rng.normal(0, chain, (origins, HORIZONS))[o, h - 1]
    shared_store = rng.normal(0, store, (origins, HORIZONS, STORES))[o, h - 1, s]
    shared_dept = rng.normal(0, dept, (origins, HORIZONS, DEPTS))[o, h - 1, d] * (d < DEPTS // 2)
    origin = 200 + 20 * o
    return HeldOut(
        store=(s + 1).ravel(),
        dept=(d + 1).ravel(),
        week=(origin + h).ravel(),
        horizon=h.ravel(),
        residual=(own + shared_chain + shared_store + shared_dept).ravel(),
        half80=np.ones(o.size),
    )


def _coverage(calibrator: IntervalCalibrator, sample: HeldOut, level: str, keys=None) -> dict[str, float]:
    """The share of `sample`'s totals at `level` (of `keys` only, when given) inside their bands."""
    totals = sample.totals(level)
    quadrature = np.full(len(totals.error), np.sqrt(totals.size[0] ** 2 / totals.size[0]))
    horizon = np.array([1, 5, 14, 27, 40])[totals.bucket]
    half = half_widths(
        calibrator, level, totals.size, np.sqrt(totals.size) * quadrature / quadrature, horizon, totals.key
    )
    mine = np.ones(len(totals.key), bool) if keys is None else np.isin(totals.key, list(keys))
    return {lv: float(np.mean((np.abs(totals.error) <= half[lv])[mine])) for lv in ("80", "95")}


def test_totals_calibrated_on_their_own_level_cover_what_they_claim():
    calibrator = IntervalCalibrator()
    calibrator.level_totals = fit_levels(_held_out(seed=1, origins=60))
    assert set(calibrator.level_totals) == set(LEVELS)
    fresh = _held_out(seed=2, origins=60)
    for level in ("chain", "department"):  # a store total keeps its lasting-and-steady model
        covered = _coverage(calibrator, fresh, level)
        assert 0.75 <= covered["80"] <= 0.85 and 0.90 <= covered["95"] <= 0.98, (level, covered)
    # Added up as independent errors (the parts' widths in quadrature) the chain would be far too narrow.
    independent = _coverage(IntervalCalibrator(), fresh, "chain")
    assert independent["80"] < 0.3, independent


def test_a_department_whose_stores_err_together_and_one_whose_errors_cancel_are_both_in_band():
    calibrator = IntervalCalibrator()
    calibrator.level_totals = fit_levels(_held_out(seed=1, origins=60, dept=3.0))
    difficulty = calibrator.level_totals["department"]["difficulty"]
    together, apart = range(1, DEPTS // 2 + 1), range(DEPTS // 2 + 1, DEPTS + 1)
    assert min(difficulty[k] for k in together) > 1.5 * max(difficulty[k] for k in apart)
    fresh = _held_out(seed=2, origins=60, dept=3.0)
    for keys in (together, apart):
        covered = _coverage(calibrator, fresh, "department", keys)
        assert 0.75 <= covered["80"] <= 0.85 and 0.90 <= covered["95"] <= 0.98, (list(keys), covered)
    alike = IntervalCalibrator()  # every department read as a typical one: the calm half far too wide
    alike.level_totals = {k: {**v, "difficulty": {}} for k, v in calibrator.level_totals.items()}
    assert _coverage(alike, fresh, "department", apart)["80"] > 0.9


def test_a_level_without_enough_totals_in_a_bucket_borrows_and_says_so():
    fitted = fit_levels(_held_out(seed=3, origins=5))  # 5 chain totals per week ahead: 20 in 1-4
    chain = fitted["chain"]
    assert chain["counts"]["1-4"] == 20 and chain["fallbacks"]["1-4"] == "5-13"
    assert chain["quantiles"]["1-4"]["0.8"] == chain["quantiles"]["5-13"]["0.8"]
    assert chain["fallbacks"]["40-52"] == "5-13"  # nothing measured that far: the nearest bucket


def test_a_level_with_few_totals_takes_its_tail_from_the_departments():
    """65 chain totals: their 95% quantile is about their largest few, so the chain keeps its own 80%
    quantiles and takes the 95% ones at the departments' ratio of the two, bucket by bucket."""
    sample = _held_out(seed=3, origins=5)
    big = np.argmax(np.abs(sample.residual))
    residual = sample.residual.copy()
    residual[sample.week == sample.week[big]] *= 20  # one week the calibrating model misjudged badly
    fitted = fit_levels(HeldOut(**{**sample.__dict__, "residual": residual}))
    chain, department = fitted["chain"], fitted["department"]
    assert chain["tail_from"] == "department" and "tail_from" not in department
    for bucket, q in chain["quantiles"].items():
        ratio = department["quantiles"][bucket]["0.95"] / department["quantiles"][bucket]["0.8"]
        assert q["0.95"] == pytest.approx(q["0.8"] * ratio), bucket
        assert 1.2 < ratio < 3, ratio


def test_a_level_with_a_few_newer_totals_follows_the_newer_model_by_their_mean_score():
    calibrating = _held_out(seed=1, origins=60)
    newer = _held_out(seed=4, origins=1)  # 13 weeks: 13 chain totals, 130 department totals
    older = HeldOut(
        **{**newer.__dict__, "residual": newer.residual * 2}
    )  # the older model erred twice as much
    fitted = fit_levels(calibrating, Newer(newer, older))
    alone = fit_levels(calibrating)
    chain = fitted["chain"]
    assert chain["skill_factors"] == {"0.8": 0.5, "0.95": 0.5}
    for bucket, q in chain["quantiles"].items():
        assert q == pytest.approx({lv: v / 2 for lv, v in alone["chain"]["quantiles"][bucket].items()})
    assert fitted["department"]["skill_factors"] == {"0.8": 0.5, "0.95": 0.5}  # enough for quantiles
    too_few = HeldOut(**{k: v[newer.week < newer.week.min() + 5] for k, v in newer.__dict__.items()})
    fewer = HeldOut(**{k: v[older.week < older.week.min() + 5] for k, v in older.__dict__.items()})
    assert fit_levels(calibrating, Newer(too_few, fewer))["chain"]["quantiles"] == alone["chain"]["quantiles"]


def test_a_model_calibrated_without_level_totals_still_gives_ordered_bounds(fc):
    old = IntervalCalibrator(quantiles=fc.calibrator.quantiles)  # as an artifact made before levels
    assert not getattr(old, "level_totals", {}) or old.level_totals == {}
    half = half_widths(old, "chain", np.array([10.0, 20.0]), np.array([5.0, 8.0]), np.array([1, 30]))
    assert np.all(half["95"] > half["80"]) and np.all(half["80"] > 0)
    # the store totals' own model, from the rows' half-widths summed and in quadrature
    stores = IntervalCalibrator(total_spread=fc.calibrator.total_spread, total_tail={"0.95": 2.0})
    rows = np.array([3.0, 4.0])
    for lv, name in ((0.8, "80"), (0.95, "95")):
        half = half_widths(stores, "store", np.array([7.0]), np.array([5.0]), np.array([20]))[name][0]
        assert half == pytest.approx(stores.total_half_width(rows, 20, lv))


def test_the_chain_total_is_the_sum_of_its_series_and_of_its_departments_to_the_cent(fc):
    start = fc.valid_range()[0]
    result = fc.forecast_total("chain", None, start, 4)
    rows = [
        {"store": s, "dept": d, "date": start + pd.Timedelta(weeks=w)}
        for s in fc.stores()
        for d in fc.departments(s)
        for w in range(4)
    ]
    preds = fc.predict_rows(rows)
    cents = (
        pd.Series(in_cents(np.array([p.prediction for p in preds]))).groupby([r["date"] for r in rows]).sum()
    )
    assert (in_cents(result.total["prediction"].to_numpy()) == cents.to_numpy()).all()
    by_week = in_cents(result.parts["prediction"].to_numpy())
    assert (
        pd.Series(by_week).groupby(result.parts["date"].to_numpy()).sum().to_numpy() == cents.to_numpy()
    ).all()
    assert set(result.parts["key"]) == set(fc.all_departments())
    bounds = result.total
    assert (bounds["lower_95"] < bounds["lower_80"]).all() and (
        bounds["lower_80"] < bounds["prediction"]
    ).all()
    assert (bounds["prediction"] < bounds["upper_80"]).all() and (
        bounds["upper_80"] < bounds["upper_95"]
    ).all()


def test_a_total_is_kept_per_level_key_and_weeks_and_never_stored_in_an_artifact(fc):
    start = fc.data_through + pd.Timedelta(weeks=1)
    chain = fc.forecast_total("chain", None, start, 4)
    assert fc.forecast_total("chain", None, start.isoformat(), 4) is chain  # the same weeks, kept
    assert fc.forecast_total("chain", None, start, 5) is not chain
    dept = fc.all_departments()[0]
    assert fc.forecast_total("department", str(dept), start, 4) is fc.forecast_total(
        "department", dept, start, 4
    )
    assert "_totals" in fc.__dict__ and "_totals" not in fc.__getstate__()


def test_a_department_total_sums_its_stores_and_a_store_total_its_departments(fc):
    start = fc.valid_range()[0]
    dept = fc.all_departments()[0]
    result = fc.forecast_total("department", dept, start, 3)
    stores = [s for s in fc.stores() if dept in fc.departments(s)]
    assert sorted(result.parts["key"].unique()) == stores
    for week, total in zip(result.total["date"], result.total["prediction"], strict=True):
        assert total == pytest.approx(
            result.parts.loc[result.parts["date"] == week, "prediction"].sum(), abs=0.005
        )
    served = fc.forecast(stores[0], dept, start, weeks=3)  # a store's part is one series: its own band
    mine = result.parts[result.parts["key"] == stores[0]]
    assert list(mine["lower_80"]) == pytest.approx([p.lower_80 for p in served])
    assert list(mine["upper_95"]) == pytest.approx([p.upper_95 for p in served])
    store = fc.forecast_store(stores[0], start, 3)
    for j, week in enumerate(store.total):
        parts = sum(round(preds[j].prediction, 2) for preds in store.departments.values())
        assert week.prediction == pytest.approx(parts, abs=0.005)


def test_unknown_departments_and_levels_are_refused_by_name(fc):
    start = fc.valid_range()[0]
    unknown = next(d for d in range(1, 100) if d not in fc.all_departments())
    with pytest.raises(ForecastError, match=f"unknown department {unknown}") as error:
        fc.forecast_total("department", unknown, start, 2)
    assert error.value.field == "dept"
    with pytest.raises(ForecastError) as error:
        fc.forecast_total("region", None, start, 2)
    assert error.value.field == "level"
    with pytest.raises(ForecastError) as error:
        fc.forecast_total("chain", None, start, 60)
    assert error.value.field == "weeks"


def test_backtest_totals_cover_by_level_on_series_that_err_together():
    """End to end on synthetic series sharing chain and store shocks: the chain's and departments'
    totals calibrated on their own past totals, and the stores' by their lasting-and-steady model,
    cover near what they claim."""
    dataset = generate_dataset(seed=5, n_stores=6, n_depts=8, shared_noise=0.06)
    origin = dataset.last_week - pd.Timedelta(weeks=26)
    result = run_backtest(dataset, origin, 26, folds=2, params={**TINY_TRAIN_PARAMS, "max_iter": 30})
    levels = result.summary["levels"]
    for level in ("department", "store"):
        assert 0.65 <= levels[level]["coverage_80"] <= 0.95, (level, levels[level])
        assert 0.85 <= levels[level]["coverage_95"] <= 1.0, (level, levels[level])
    assert levels["chain"]["coverage_80"] >= 0.5 and levels["chain"]["coverage_95"] >= 0.75, levels["chain"]
    assert levels["chain"]["totals"] == 52 and set(levels["chain"]["by_bucket"]) == {
        "1",
        "2-4",
        "5-13",
        "14-26",
    }
    fitted = result.models[0].calibrator.level_totals
    assert fitted["chain"]["quantiles"]["5-13"]["0.8"] > fitted["store"]["quantiles"]["5-13"]["0.8"] / 10
    # departments and stores also by quarter of their totals' volatility, every total in one quarter
    for level in ("department", "store"):
        quarters = levels[level]["by_volatility_quarter"]
        assert set(quarters) == {"Q1", "Q2", "Q3", "Q4"}
        assert sum(q["totals"] for q in quarters.values()) == levels[level]["totals"]
    assert "by_volatility_quarter" not in levels["chain"]
