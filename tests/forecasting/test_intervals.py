"""Split-conformal intervals by horizon bucket."""

import numpy as np
import pytest

from app.forecasting.intervals import (
    BUCKET_LABELS,
    NORMAL_Z,
    IntervalCalibrator,
    StoreTotals,
    bucket_index,
    bucket_sort_key,
    difficulty_features,
    interval_denominator,
)


def test_buckets():
    assert list(bucket_index(np.array([1, 4, 5, 13, 14, 26, 27, 39, 40, 52]))) == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


def test_calibrated_intervals_cover_fresh_residuals():
    rng = np.random.default_rng(0)
    n = 20_000
    h = rng.integers(1, 40, n)
    scale = rng.uniform(100, 10_000, n)
    base = scale * rng.uniform(0.5, 1.5, n)
    denom = interval_denominator(scale, base)
    noise = lambda: rng.standard_t(5, n) * denom * (1 + h / 40)  # noqa: E731
    cal = IntervalCalibrator().fit(h, noise(), denom)
    resid = noise()
    b = cal.bounds(h, np.zeros(n), denom)
    cov80 = np.mean((resid >= b["lower_80"]) & (resid <= b["upper_80"]))
    cov95 = np.mean((resid >= b["lower_95"]) & (resid <= b["upper_95"]))
    assert 0.78 < cov80 < 0.82 and 0.94 < cov95 < 0.96
    # the 40-52 bucket had no calibration rows: it borrows 27-39's quantiles as they are, and says so
    assert cal.quantiles["40-52"] == cal.quantiles["27-39"]
    assert cal.fallbacks == {"40-52": "27-39"} and cal.counts["40-52"] == 0
    assert list(cal.quantiles) == BUCKET_LABELS
    assert cal.to_dict()["fallbacks"] == {"40-52": "27-39"}


def test_every_bucket_with_residuals_is_calibrated_on_its_own():
    """A far bucket with residuals gets their quantile, even when it is narrower than the one before
    (a fixed widening of the previous bucket would have hidden that)."""
    rng = np.random.default_rng(1)
    h = np.tile(np.arange(1, 53), 200)
    spread = np.where(h >= 40, 0.5, np.where(h >= 27, 2.0, 1.0))
    cal = IntervalCalibrator().fit(h, rng.normal(size=len(h)) * spread, np.ones(len(h)))
    assert cal.fallbacks == {}
    assert cal.counts["40-52"] == 13 * 200
    q = {label: cal.quantiles[label]["0.8"] for label in BUCKET_LABELS}
    assert 0.55 < q["40-52"] < 0.75 and 2.2 < q["27-39"] < 2.9  # |N(0, s)| at 80%: 1.28 s
    assert q["40-52"] < q["27-39"]


def test_sparse_buckets_borrow_from_the_nearest_calibrated_one():
    h = np.concatenate([np.full(5, 2), np.full(100, 20), np.full(10, 45)])  # 1-4 and 40-52 too thin
    cal = IntervalCalibrator().fit(h, np.linspace(0, 1, len(h)), np.ones(len(h)))
    assert cal.fallbacks == {"1-4": "14-26", "5-13": "14-26", "27-39": "14-26", "40-52": "14-26"}
    assert all(cal.quantiles[label] == cal.quantiles["14-26"] for label in BUCKET_LABELS)
    assert cal.counts == {"1-4": 5, "5-13": 0, "14-26": 100, "27-39": 0, "40-52": 10}


def test_too_few_residuals_anywhere_pools_them():
    cal = IntervalCalibrator().fit(np.array([1, 20, 45]), np.array([1.0, 2.0, 3.0]), np.ones(3))
    assert set(cal.fallbacks.values()) == {"all horizons"}
    assert cal.quantiles["1-4"] == {"0.8": 3.0, "0.95": 3.0}
    empty = IntervalCalibrator().fit(np.array([], int), np.array([]), np.array([]))
    assert empty.quantiles["40-52"] == {"0.8": 1.0, "0.95": 1.0}


def test_cold_start_widens():
    cal = IntervalCalibrator().fit(np.arange(1, 53).repeat(40), np.linspace(-1, 1, 52 * 40), np.ones(52 * 40))
    normal = cal.bounds(np.array([3]), np.zeros(1), np.ones(1), np.array([False]))
    cold = cal.bounds(np.array([3]), np.zeros(1), np.ones(1), np.array([True]))
    assert cold["upper_80"][0] > normal["upper_80"][0]


def test_bucket_labels_sort_by_weeks_ahead():
    stored = ["1-4", "14-26", "27-39", "40-52", "5-13"]  # JSON keys come back sorted as text
    assert sorted(stored, key=bucket_sort_key) == ["1-4", "5-13", "14-26", "27-39", "40-52"]
    lags = ["27-52", "2-4", "1", "14-26", "5-13 wk", "total"]
    assert sorted(lags, key=bucket_sort_key) == ["1", "2-4", "5-13 wk", "14-26", "27-52", "total"]


def test_season_matching_divides_out_the_weeks_a_far_bucket_could_reach():
    """Weeks 27-39 are twice as hard at every horizon; the 40-52 bucket was only scored on them.
    Matched on the near horizons, its quantile is that of all weeks, as the near buckets' are."""
    rng = np.random.default_rng(2)
    week = np.concatenate([np.tile(np.arange(1, 40), 300), np.tile(np.arange(27, 40), 300)])
    h = np.concatenate([rng.integers(1, 14, 39 * 300), rng.integers(40, 53, 13 * 300)])
    resid = rng.normal(size=len(h)) * np.where(week >= 27, 2.0, 1.0)
    plain = IntervalCalibrator().fit(h, resid, np.ones(len(h)))
    matched = IntervalCalibrator().fit(h, resid, np.ones(len(h)), target_week=week)
    near = plain.quantiles["5-13"]["0.8"]
    assert plain.quantiles["40-52"]["0.8"] > 1.4 * near
    assert abs(matched.quantiles["40-52"]["0.8"] / near - 1) < 0.1
    assert matched.season_factors["40-52"]["0.8"] > 1.4
    assert abs(matched.season_factors["5-13"]["0.8"] - 1) < 0.05
    assert plain.season_factors == {}


def _store_totals(rng, stores: int, weeks: int, spread: float, shock=None, depts: int = 10) -> StoreTotals:
    """Residuals of `depts` departments with 80% half-widths of 1 (normal shocks unless `shock` draws
    them), where each store's total also errs by its own amount every week: `spread` times the sum
    of its half-widths, across stores."""
    draw = shock or (lambda size: rng.normal(size=size) / NORMAL_Z["0.8"])
    lasting = rng.normal(size=(stores, 1, 1)) * spread  # every department of a store, every week
    resid = draw((stores, weeks, depts)) + lasting
    store = np.broadcast_to(np.arange(stores)[:, None, None], resid.shape).ravel()
    week = np.broadcast_to(np.arange(1, weeks + 1)[None, :, None], resid.shape).ravel()
    return StoreTotals.of_rows(store, week, week, resid.ravel(), np.ones(resid.size))  # all from week 0


def _covered(cal: IntervalCalibrator, totals: StoreTotals, level: float) -> float:
    return float(np.mean(np.abs(totals.error) <= cal.total_half_width(np.ones(10), 3, level)))


def test_store_totals_cover_when_stores_err_for_weeks_on_end():
    rng = np.random.default_rng(1)
    totals = _store_totals(rng, stores=400, weeks=13, spread=0.12)
    cal = IntervalCalibrator().fit_totals(totals)
    assert set(cal.total_spread) == set(BUCKET_LABELS)
    for label in ("1-4", "5-13"):
        assert abs(cal.total_spread[label] - 0.12) < 0.03, (label, cal.total_spread)
    assert cal.total_spread["40-52"] == cal.total_spread["5-13"]  # unmeasured: the nearest bucket's
    assert cal.total_tail["0.95"] == pytest.approx(NORMAL_Z["0.95"] / NORMAL_Z["0.8"], rel=0.05)
    fresh = _store_totals(rng, stores=4_000, weeks=1, spread=0.12)
    for lv in (0.8, 0.95):
        assert abs(_covered(cal, fresh, lv) - lv) < 0.02, lv
    quadrature = IntervalCalibrator()
    assert quadrature.total_half_width(np.array([3.0, 4.0]), 1, 0.8) == pytest.approx(5.0)
    assert _covered(quadrature, fresh, 0.8) < 0.77  # the lasting errors ignored


def test_store_totals_tail_follows_heavy_tailed_departments():
    rng = np.random.default_rng(2)
    heavy = _store_totals(
        rng, stores=400, weeks=13, spread=0.0, shock=lambda size: rng.standard_t(2, size=size)
    )
    cal = IntervalCalibrator().fit_totals(heavy)
    assert max(cal.total_spread.values()) < 0.05
    assert cal.total_tail["0.95"] > 1.1 * NORMAL_Z["0.95"] / NORMAL_Z["0.8"]


def test_store_totals_measure_nothing_from_one_store():
    one = _store_totals(np.random.default_rng(3), stores=1, weeks=13, spread=0.1)
    cal = IntervalCalibrator().fit_totals(one)
    assert cal.total_spread == {} and cal.total_tail == {}
    assert cal.total_half_width(np.array([3.0, 4.0]), 1, 0.95) == pytest.approx(
        5.0 * NORMAL_Z["0.95"] / NORMAL_Z["0.8"]
    )


def test_rescale_to_a_newer_models_skill():
    cal = IntervalCalibrator(quantiles={"1-4": {"0.8": 2.0, "0.95": 4.0}, "5-13": {"0.8": 3.0, "0.95": 6.0}})
    old = np.linspace(0, 2, 1001)
    cal.rescale_to(old / 2, old)
    assert cal.quantiles["5-13"]["0.8"] == 1.5 and cal.quantiles["1-4"]["0.95"] == 2.0
    assert cal.skill_factors == {"0.8": 0.5, "0.95": 0.5}


def test_rescale_to_takes_the_newer_models_own_buckets_and_grows_past_them():
    cal = IntervalCalibrator(
        quantiles={label: {"0.8": 1.0 + b, "0.95": 2.0 + 2 * b} for b, label in enumerate(BUCKET_LABELS)}
    )
    new = np.tile(np.linspace(0, 1, 101), 13)
    horizon = np.repeat(np.arange(1, 14), 101)
    cal.rescale_to(new, new * 2, horizon)
    q = cal.quantiles
    assert 0.79 <= q["1-4"]["0.8"] <= 0.82 and 0.79 <= q["5-13"]["0.8"] <= 0.82  # the newer model's own
    assert q["14-26"]["0.8"] == q["5-13"]["0.8"] * 3 / 2 and q["40-52"]["0.95"] == q["5-13"]["0.95"] * 10 / 4


def test_rescale_to_takes_part_of_the_growth_when_asked():
    cal = IntervalCalibrator(
        quantiles={label: {"0.8": 1.0 + b, "0.95": 2.0 + 2 * b} for b, label in enumerate(BUCKET_LABELS)}
    )
    new = np.tile(np.linspace(0, 1, 101), 13)
    horizon = np.repeat(np.arange(1, 14), 101)
    cal.rescale_to(new, new * 2, horizon, 0.5)
    q = cal.quantiles
    assert q["14-26"]["0.8"] == pytest.approx(q["5-13"]["0.8"] * (3 / 2) ** 0.5)
    assert q["40-52"]["0.95"] == pytest.approx(q["5-13"]["0.95"] * (10 / 4) ** 0.5)
    cal.rescale_to(new, new, horizon, 0.0)
    assert cal.quantiles["27-39"] == cal.quantiles["5-13"]


def test_rescale_to_season_matches_the_newer_models_weeks_to_the_reference():
    """The newer model was only scored on weeks 27-39, which are twice as hard for the calibrating
    model at every horizon: matched, its buckets say what all weeks would; unmatched, what those did."""
    rng = np.random.default_rng(3)
    ref_week = np.tile(np.arange(1, 40), 300)
    ref_score = np.abs(rng.normal(size=len(ref_week))) * np.where(ref_week >= 27, 2.0, 1.0)
    new_week = np.tile(np.arange(27, 40), 300)
    new_score = np.abs(rng.normal(size=len(new_week))) * 2.0
    horizon = new_week - 26

    def rescaled(**season: object) -> IntervalCalibrator:
        cal = IntervalCalibrator(quantiles={label: {"0.8": 1.0, "0.95": 2.0} for label in BUCKET_LABELS})
        return cal.rescale_to(new_score, new_score, horizon, **season)

    plain = rescaled()
    matched = rescaled(new_week=new_week, reference=(ref_score, ref_week))
    all_weeks = float(np.quantile(ref_score, 0.8))
    assert plain.quantiles["5-13"]["0.8"] == pytest.approx(2 * 1.2816, rel=0.1)
    assert matched.quantiles["5-13"]["0.8"] == pytest.approx(all_weeks, rel=0.1)
    assert matched.season_factors["5-13"]["0.8"] > 1.5 and plain.season_factors["5-13"]["0.8"] == 1.0


def _calm_and_volatile(rng: np.random.Generator, n_series: int = 400, weeks: int = 30):
    """Residuals of series whose noise is known: half calm (sd 1), half volatile (sd 5), their history
    telling which (a week-to-week spread in proportion), sizes alike."""
    volatile = np.arange(n_series) % 2 == 1
    sd = np.where(volatile, 5.0, 1.0)
    raw = 100 + rng.normal(size=(n_series, 60)) * sd[:, None]
    features = difficulty_features(raw, np.full(n_series, 100.0))
    rows = np.repeat(np.arange(n_series), weeks)
    horizon = np.tile(np.arange(1, weeks + 1), n_series)
    return volatile, features, rows, horizon, lambda: rng.normal(size=len(rows)) * sd[rows]


def test_normalised_scores_cover_calm_and_volatile_series_alike():
    rng = np.random.default_rng(3)
    volatile, features, rows, horizon, noise = _calm_and_volatile(rng)
    denom = np.full(len(rows), 10.0)
    plain = IntervalCalibrator().fit(horizon, noise(), denom)
    cal = IntervalCalibrator().fit_difficulty(horizon, noise(), denom, features[rows])
    for h in (1, 20):  # each horizon group's fit
        difficulty = cal.difficulty(features, h)
        assert difficulty[volatile].min() > 2 * difficulty[~volatile].max()  # learned from the history
    scaled = denom * cal.difficulty(features[rows], horizon)
    cal.fit(horizon, noise(), scaled)
    fresh = noise()
    for calibrator, d, in_band in ((plain, denom, False), (cal, scaled, True)):
        b = calibrator.bounds(horizon, np.zeros(len(rows)), d)
        inside80 = (fresh >= b["lower_80"]) & (fresh <= b["upper_80"])
        inside95 = (fresh >= b["lower_95"]) & (fresh <= b["upper_95"])
        for group in (volatile[rows], ~volatile[rows]):
            c80, c95 = inside80[group].mean(), inside95[group].mean()
            assert (0.77 <= c80 <= 0.83 and 0.93 <= c95 <= 0.97) == in_band, (c80, c95)
    assert cal.to_dict()["difficulty"]["coef"] == cal.difficulty_coef


def test_difficulty_is_fitted_per_horizon_group():
    """Calm series whose level drifts: next weeks they err by their small noise, a season out by the
    drift every series shares, so their difficulty a season out is nearer the volatile ones'."""
    rng = np.random.default_rng(5)
    volatile, features, rows, horizon, noise = _calm_and_volatile(rng, weeks=40)
    drift = np.where(horizon > 13, 4.0, 0.0) * rng.normal(size=len(rows))
    cal = IntervalCalibrator().fit_difficulty(
        horizon, noise() + drift, np.full(len(rows), 10.0), features[rows]
    )
    assert len(cal.difficulty_coef) == 2
    near, far = cal.difficulty(features, 1), cal.difficulty(features, 30)
    ratio_near = near[volatile].mean() / near[~volatile].mean()
    ratio_far = far[volatile].mean() / far[~volatile].mean()
    assert ratio_far < 0.6 * ratio_near, (ratio_near, ratio_far)


def test_bucket_only_half_width_undoes_the_difficulty():
    """A served half-width over its difficulty, times the bucket-only over the served quantile, is the
    bucket-only conformal half-width a store total reads."""
    rng = np.random.default_rng(6)
    volatile, features, rows, horizon, noise = _calm_and_volatile(rng)
    denom = np.full(len(rows), 10.0)
    resid = noise()
    plain = IntervalCalibrator().fit(horizon, resid, denom)
    cal = IntervalCalibrator().fit_difficulty(horizon, resid, denom, features[rows])
    difficulty = cal.difficulty(features[rows], horizon)
    cal.fit(horizon, resid, denom * difficulty)
    cal.plain_quantiles = plain.quantiles
    for level, name in ((0.8, "80"), (0.95, "95")):
        served = cal.bounds(horizon, np.zeros(len(rows)), denom * difficulty)[f"upper_{name}"]
        expected = plain.bounds(horizon, np.zeros(len(rows)), denom)[f"upper_{name}"]
        assert np.allclose(cal.plain_half_width(horizon, served, difficulty, level), expected)
    assert cal.to_dict()["plain_quantiles"] == plain.quantiles


def test_any_quantile_rises_with_q_and_meets_the_bands():
    rng = np.random.default_rng(4)
    n = 5_000
    h = rng.integers(1, 40, n)
    denom = rng.uniform(10, 100, n)
    cal = IntervalCalibrator().fit(h, rng.standard_t(4, n) * denom, denom)
    pred = rng.uniform(50, 500, n)
    floor = np.where(np.arange(n) % 2 == 0, 0.0, -np.inf)
    levels = np.round(np.arange(0.01, 1.0, 0.01), 2)
    q = np.array([cal.quantile(level, h, pred, denom, floor=floor) for level in levels])
    assert (np.diff(q, axis=0) >= 0).all()  # monotone in q, row by row
    bounds = cal.bounds(h, pred, denom, floor=floor)
    at = {round(level, 2): row for level, row in zip(levels, q, strict=True)}
    assert np.allclose(at[0.1], bounds["lower_80"]) and np.allclose(at[0.9], bounds["upper_80"])
    assert np.allclose(at[0.5], pred)
    assert np.allclose(cal.quantile(0.025, h, pred, denom, floor=floor), bounds["lower_95"])
    assert np.allclose(cal.quantile(0.975, h, pred, denom), bounds["upper_95"])
    assert (bounds["lower_95"][floor == 0] >= 0).all() and (bounds["lower_95"][floor < 0] < 0).any()
    fresh = pred + rng.standard_t(4, n) * denom  # quantiles cover about their level
    assert 0.86 < np.mean(fresh <= at[0.9]) < 0.94 and 0.06 < np.mean(fresh <= at[0.1]) < 0.14
    with pytest.raises(ValueError, match="outside"):
        cal.quantile(0.995, h, pred, denom)


def test_mondrian_cells_correct_where_the_difficulty_line_bends():
    """Series whose error is not log-linear in their history's spread: the most volatile quarter errs
    three times what the line through every series says, the others as it says. The cells widen the
    volatile quarter toward its asked coverage (shrunk toward the line by their count of rows) and
    narrow the others, which the line had widened for it; an artifact pickled without cells reads none."""
    rng = np.random.default_rng(7)
    n_series, weeks = 1600, 26
    spread = np.exp(rng.uniform(0, 2, n_series))
    raw = 100 + rng.normal(size=(n_series, 60)) * spread[:, None]
    features = difficulty_features(raw, np.full(n_series, 100.0))
    top = spread >= np.quantile(spread, 0.75)
    sd = spread * np.where(top, 3.0, 1.0)
    rows = np.repeat(np.arange(n_series), weeks)
    horizon = np.tile(np.arange(1, weeks + 1), n_series)

    def noise() -> np.ndarray:
        return rng.normal(size=len(rows)) * sd[rows]

    denom = np.full(len(rows), 10.0)
    resid = noise()
    line = IntervalCalibrator().fit_difficulty(horizon, resid, denom, features[rows])
    cells = IntervalCalibrator().fit_difficulty(horizon, resid, denom, features[rows])
    cells.fit_groups(horizon, resid, denom, features[rows])
    assert cells.group_factors and len(cells.to_dict()["difficulty"]["group_factors"]) == 6
    fresh, figures = noise(), {}
    for name, calibrator in (("line", line), ("cells", cells)):
        d = denom * calibrator.difficulty(features[rows], horizon)
        calibrator.fit(horizon, resid, d)
        b = calibrator.bounds(horizon, np.zeros(len(rows)), d)
        inside80 = (fresh >= b["lower_80"]) & (fresh <= b["upper_80"])
        far = horizon >= 5  # horizons with enough rows per cell for the shrinkage to let go
        figures[name] = [
            (inside80[g & far].mean(), b["upper_80"][g & far].mean()) for g in (top[rows], ~top[rows])
        ]
    (line_top, _), (line_rest, line_rest_width) = figures["line"]
    (cells_top, _), (cells_rest, cells_rest_width) = figures["cells"]
    assert line_top < 0.72 and cells_top > line_top + 0.05, figures
    assert cells_rest_width < line_rest_width and cells_rest >= 0.77, figures
    assert IntervalCalibrator.group_factors == ()  # what an artifact pickled without cells reads
