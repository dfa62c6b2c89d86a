"""Holiday weeks from their rules, and the alignment of the yearly lag."""

import numpy as np
import pandas as pd
import pytest

from app.forecasting import calendar

FLAGGED = {
    "super_bowl": ["2010-02-12", "2011-02-11", "2012-02-10", "2013-02-08"],
    "labor_day": ["2010-09-10", "2011-09-09", "2012-09-07", "2013-09-06"],
    "thanksgiving": ["2010-11-26", "2011-11-25", "2012-11-23", "2013-11-29"],
    "christmas": ["2010-12-31", "2011-12-30", "2012-12-28", "2013-12-27"],
}


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_holiday_weeks_match_the_kaggle_flags(name):
    got = [calendar.holiday_weeks(y)[name].date().isoformat() for y in (2010, 2011, 2012, 2013)]
    assert got == FLAGGED[name]


def test_is_holiday_week_maps_any_day_to_its_week():
    assert calendar.is_holiday_week("2012-11-23") is True
    assert calendar.is_holiday_week("2012-11-19") is True  # Monday of Thanksgiving week
    assert calendar.is_holiday_week("2012-11-24") is False  # Saturday starts the next week
    assert list(calendar.is_holiday_week(["2012-09-07", "2012-09-14"])) == [True, False]
    assert calendar.week_ending("2012-11-19") == pd.Timestamp("2012-11-23")


def test_is_holiday_week_agrees_with_all_flags_of_a_year():
    fridays = pd.date_range("2010-02-05", "2013-12-27", freq="W-FRI")
    flagged = set(sum(FLAGGED.values(), []))
    assert [d.date().isoformat() for d in fridays[calendar.is_holiday_week(fridays)]] == sorted(flagged)


def test_aligned_lag_follows_thanksgiving_christmas_and_easter():
    assert calendar.aligned_lag_week("2011-11-25") == pd.Timestamp("2010-11-26")
    # 2013: a plain 52-week lag would miss Thanksgiving by a week
    assert calendar.aligned_lag_week("2013-11-29") == pd.Timestamp("2012-11-23")
    assert calendar.aligned_lag_week("2013-12-06") == pd.Timestamp("2012-11-30")  # week after Thanksgiving
    assert calendar.aligned_lag_week("2012-12-28") == pd.Timestamp("2011-12-30")
    assert calendar.aligned_lag_week("2012-04-06") == pd.Timestamp("2011-04-22")  # Good Friday weeks
    assert calendar.aligned_lag_week("2012-07-06") == pd.Timestamp("2011-07-08")  # plain 52 weeks


def test_weeks_to_holidays_and_table():
    idx = calendar.week_index(["2012-11-23", "2012-12-28", "2012-11-02"])
    table = calendar.calendar_table(idx)
    assert list(table["weeks_to_thanksgiving"]) == [0, -5, 3]
    assert list(table["weeks_to_christmas"]) == [5, 0, 8]  # positive: the holiday is ahead
    assert list(table["is_holiday"]) == [True, True, False]
    assert np.array_equal(
        calendar.week_date(idx), pd.DatetimeIndex(["2012-11-23", "2012-12-28", "2012-11-02"])
    )


def test_synthetic_flags_agree_with_the_calendar(small_dataset):
    flags = small_dataset.features.drop_duplicates("date")
    assert np.array_equal(calendar.is_holiday_week(flags["date"]), flags["is_holiday"].to_numpy())


def test_christmas_shift_moves_december_weeks_and_only_those():
    fridays = pd.date_range("2011-01-07", "2016-12-30", freq="W-FRI")
    table = calendar.calendar_table(calendar.week_index(fridays))
    moved = fridays[table["christmas_shift"] != 0]
    assert len(moved) and set(moved.month) == {12}
    for year in range(2011, 2017):  # Christmas changes weekday every year: the week before it always moves
        before_christmas = calendar.holiday_weeks(year)["christmas"] - pd.Timedelta(weeks=1)
        assert before_christmas in set(moved)
    shift_days = dict(zip(fridays.date, np.round(table["christmas_shift"] * 7), strict=True))
    # 2011: Christmas on a Sunday, not a Saturday: the week to Dec 23 lost Christmas Eve (one day earlier)
    assert shift_days[pd.Timestamp("2011-12-23").date()] == -1
    assert shift_days[pd.Timestamp("2012-12-21").date()] == -2  # Sunday -> Tuesday
    assert np.all(np.abs(table["christmas_shift"]) <= 3 / 7)


def test_easter_weeks_and_thanksgiving_alignment_within_the_data():
    fridays = pd.date_range("2010-02-05", "2012-12-28", freq="W-FRI")
    table = calendar.calendar_table(calendar.week_index(fridays))
    assert [d.date().isoformat() for d in fridays[table["is_easter"]]] == [
        "2010-04-02",
        "2011-04-22",
        "2012-04-06",
    ]
    # Thanksgiving-aligned weeks of 2011-2012 are plain 52-week lags: the alignment only matters from 2013
    thanksgiving = table["align_source"] == 1
    assert np.all(calendar.week_index(fridays[thanksgiving]) - table["aligned_lag"][thanksgiving] == 52)
