"""Accuracy by lag: published forecasts scored against actuals, checked against a hand computation."""

from __future__ import annotations

import datetime as dt

import pytest

from app.loop import accuracy
from app.monitoring import alerts
from app.storage import ActualSale, ForecastRow, ForecastRun, LagAccuracy

WEEK = dt.date(2012, 11, 23)  # a holiday week (Thanksgiving): weight 5


def _run(session, through: dt.date, lineage: str, rows: list[tuple[int, int, int, float, float]]) -> None:
    """rows: (store, dept, lag, prediction, naive); intervals +-10% (80%) and +-20% (95%)."""
    run = ForecastRun(
        model_version="v1",
        data_through=through,
        lineage=lineage,
        horizon=52,
        series=len(rows),
        rows=len(rows),
        seconds=0,
    )
    session.add(run)
    session.flush()
    for store, dept, lag, prediction, naive in rows:
        session.add(
            ForecastRow(
                run_id=run.id, store=store, dept=dept, week=through + dt.timedelta(weeks=lag), lag=lag,
                prediction=prediction, lower_80=prediction * 0.9, upper_80=prediction * 1.1,
                lower_95=prediction * 0.8, upper_95=prediction * 1.2, naive=naive,
            )
        )  # fmt: skip


@pytest.fixture
def scored(app):
    storage = app.extensions["storage"]
    with storage.session() as session:
        _run(
            session,
            WEEK - dt.timedelta(weeks=1),
            "L",
            [(1, 1, 1, 100.0, 80.0), (1, 2, 1, 200.0, 260.0), (1, 3, 1, 50.0, 50.0)],
        )
        _run(session, WEEK - dt.timedelta(weeks=5), "L", [(1, 1, 5, 130.0, 80.0), (1, 2, 5, 150.0, 260.0)])
        session.add_all(
            [
                ActualSale(store=1, dept=1, week=WEEK, weekly_sales=105.0, is_holiday=True, lineage="L"),
                ActualSale(store=1, dept=2, week=WEEK, weekly_sales=250.0, is_holiday=True, lineage="L"),
                # the same week of another dataset: never scored against lineage L's forecasts
                ActualSale(store=1, dept=3, week=WEEK, weekly_sales=9999.0, is_holiday=True, lineage="other"),
            ]
        )
    assert accuracy.weeks_to_score(storage, "L") == [WEEK]
    assert accuracy.score_new_weeks(storage, "L") == [WEEK]
    assert accuracy.weeks_to_score(storage, "L") == []
    return storage


def test_lag_buckets_match_a_hand_computation(scored):
    by_lag = accuracy.accuracy_by_lag(scored, "L")
    assert set(by_lag) == {"1", "5-13"}
    lag1 = by_lag["1"]
    assert lag1["rows"] == 2  # dept 3's actual belongs to another dataset
    assert lag1["wmae"] == pytest.approx((5 * 5 + 5 * 50) / 10)  # holiday weights cancel within a week
    assert lag1["naive_wmae"] == pytest.approx((5 * 25 + 5 * 10) / 10)
    assert lag1["bias"] == pytest.approx(((100 - 105) + (200 - 250)) / 2)
    assert lag1["bias_pct"] == pytest.approx(-55 / 355)
    assert lag1["coverage_80"] == pytest.approx(0.5)  # 105 within 90..110; 250 outside 180..220
    assert lag1["coverage_95"] == pytest.approx(0.5)  # 250 outside 160..240
    assert lag1["value_added"] == pytest.approx(1 - 27.5 / 17.5)
    lag5 = by_lag["5-13"]
    assert lag5["wmae"] == pytest.approx((25 + 100) / 2) and lag5["coverage_80"] == 0.0


def test_interval_scores_and_quantile_losses_match_a_hand_computation(scored):
    lag1 = accuracy.accuracy_by_lag(scored, "L")["1"]
    # 105 inside 90..110 (width 20) and 80..120 (40); 250 above 180..220 by 30 and above 160..240 by 10
    assert lag1["interval_score_80"] == pytest.approx((20 + (40 + 10 * 30)) / 2)
    assert lag1["interval_score_95"] == pytest.approx((40 + (80 + 40 * 10)) / 2)
    # pinball losses of the 80% band's ends (the 0.1 and 0.9 quantiles) and of the forecast (0.5),
    # twice their sum over the summed sales 105 + 250
    assert lag1["wql_0.1"] == pytest.approx(2 * (0.1 * 15 + 0.1 * 70) / 355)
    assert lag1["wql_0.5"] == pytest.approx(2 * (0.5 * 5 + 0.5 * 50) / 355)
    assert lag1["wql_0.9"] == pytest.approx(2 * (0.1 * 5 + 0.9 * 30) / 355)
    assert lag1["scored_rows"] == 2
    # lag 5: 105 below 117..143 by 12, 250 above 135..165 by 85
    assert accuracy.accuracy_by_lag(scored, "L")["5-13"]["interval_score_80"] == pytest.approx(
        ((26 + 10 * 12) + (30 + 10 * 85)) / 2
    )
    (week,) = [h for h in accuracy.accuracy_history(scored, "L") if h["bucket"] == "1"]
    assert week["interval_score_80"] == pytest.approx(180.0) and week["wql_0.5"] == pytest.approx(55 / 355)


def test_weeks_scored_before_the_scores_were_kept_leave_them_to_the_weeks_that_have_them(scored):
    later = WEEK + dt.timedelta(weeks=1)
    with scored.session() as session:
        _run(session, WEEK, "L", [(1, 1, 1, 100.0, 80.0)])
        sale = ActualSale(store=1, dept=1, week=later, weekly_sales=120.0, is_holiday=False, lineage="L")
        session.add(sale)
    assert accuracy.score_new_weeks(scored, "L") == [later]
    with scored.session() as session:  # the first week as a database scored before the scores existed
        for row in session.query(LagAccuracy).filter(LagAccuracy.week == WEEK):
            for name in accuracy.SCORE_SUMS:
                setattr(row, name, None)
    lag1 = accuracy.accuracy_by_lag(scored, "L")["1"]
    assert lag1["rows"] == 3 and lag1["scored_rows"] == 1
    assert lag1["interval_score_80"] == pytest.approx(20 + 10 * 10)  # 120 above 90..110 by 10
    assert lag1["wql_0.5"] == pytest.approx(2 * 0.5 * 20 / 120)
    (old,) = [h for h in accuracy.accuracy_history(scored, "L") if h["week"] == WEEK and h["bucket"] == "1"]
    assert old["coverage_80"] == 0.5 and old["interval_score_80"] is None and old["scored_rows"] == 0


def test_reingested_actuals_are_scored_again_and_no_other_lineage_is_scored(scored):
    assert accuracy.accuracy_by_lag(scored, "other") == {}
    with scored.session() as session:
        row = session.get(ActualSale, (1, 1, WEEK))
        row.weekly_sales, row.ingested_at = 100.0, dt.datetime.now() + dt.timedelta(seconds=1)
    assert accuracy.score_new_weeks(scored, "L") == [WEEK]
    assert accuracy.accuracy_by_lag(scored, "L")["1"]["wmae"] == pytest.approx(25.0)


def test_degradation_compares_a_bucket_with_the_backtest_for_that_bucket_over_enough_rows(scored):
    with scored.session() as session:
        kwargs = dict(factor=1.5, window_weeks=4, today=WEEK)
        backtest = {"1": {"wmae": 10.0}, "5-13": {"wmae": 100.0}}
        assert (
            accuracy.check_degradation(session, scored, "L", backtest, min_rows=3, **kwargs) == []
        )  # too few rows
        opened = accuracy.check_degradation(session, scored, "L", backtest, min_rows=2, **kwargs)
        assert len(opened) == 1  # lag 1: 27.5 vs 10, 2.75x (warning; critical past 3x); lag 5-13: fine
        (alert,) = alerts.open_alerts(session, "degradation")
        assert alert.severity == "warning" and "lag" in alert.message and alert.details["bucket"] == "1"
        healed = {"1": {"wmae": 30.0}, "5-13": {"wmae": 100.0}}
        assert accuracy.check_degradation(session, scored, "L", healed, min_rows=2, **kwargs) == []
        assert alerts.open_alerts(session, "degradation") == []
