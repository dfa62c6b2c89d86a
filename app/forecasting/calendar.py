"""Weeks, holidays and their alignment across years.

Walmart weeks run Saturday..Friday and are named by their Friday. The four flagged holidays
(Super Bowl, Labor Day, Thanksgiving, Christmas) are computed from their rules for any year, so
forecasts past the end of features.csv still know them. Easter is not flagged but moves sales
by weeks, so it takes part in the alignment of the yearly lag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

EPOCH = np.datetime64("2010-02-05", "D")  # a Friday: week index 0 (first week of the Kaggle data)
HOLIDAYS = ("super_bowl", "labor_day", "thanksgiving", "christmas")

# Window (in weeks, relative to the anchor week) inside which a week is mapped by its position
# relative to that anchor rather than by a plain 52-week lag. Order matters: first match wins.
ALIGN_WINDOWS = (("thanksgiving", -2, 1), ("christmas", -3, 1), ("easter", -2, 1))


def week_ending(value: object) -> pd.Timestamp:
    """The Friday that names the Saturday..Friday week containing value."""
    ts = pd.Timestamp(value).normalize()
    return ts + pd.Timedelta(days=(4 - ts.weekday()) % 7)


def friday_on_or_after(day: dt.date) -> dt.date:
    """week_ending for a plain date, without a pandas Timestamp (the batch check runs it per row)."""
    return day + dt.timedelta(days=(4 - day.weekday()) % 7)


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


@lru_cache(maxsize=256)
def holiday_weeks(year: int) -> dict[str, pd.Timestamp]:
    """Week-ending Fridays of the holidays of a year (plus Easter, used only for alignment).

    Super Bowl Sunday is the first Sunday of February until 2021 and the second from 2022, when the
    NFL season grew by a week; this reproduces every IsHoliday flag of the Kaggle files.
    """
    feb1 = dt.date(year, 2, 1)
    super_bowl = feb1 + dt.timedelta(days=(6 - feb1.weekday()) % 7 + (7 if year >= 2022 else 0))
    sep1 = dt.date(year, 9, 1)
    labor_day = sep1 + dt.timedelta(days=(0 - sep1.weekday()) % 7)
    nov1 = dt.date(year, 11, 1)
    thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    easter = _easter(year)
    return {
        "super_bowl": pd.Timestamp(friday_on_or_after(super_bowl)),
        "labor_day": pd.Timestamp(friday_on_or_after(labor_day)),
        "thanksgiving": pd.Timestamp(friday_on_or_after(thanksgiving)),
        "christmas": pd.Timestamp(friday_on_or_after(dt.date(year, 12, 25))),
        # The Saturday..Friday week that ends on Good Friday holds the Easter shopping.
        "easter": pd.Timestamp(easter - dt.timedelta(days=2)),
    }


def flagged_holiday_weeks(year: int) -> dict[str, pd.Timestamp]:
    """The four weeks of a year that the Kaggle files flag IsHoliday (Easter is not one)."""
    weeks = holiday_weeks(year)
    return {name: weeks[name] for name in HOLIDAYS}


def week_index(dates: object) -> np.ndarray:
    """Integer week number since 2010-02-05 of week-ending Fridays (vectorised)."""
    arr = np.asarray(pd.to_datetime(pd.Index(np.atleast_1d(dates))).values.astype("datetime64[D]"))
    return ((arr - EPOCH).astype(np.int64) // 7).astype(np.int64)


def week_date(index: np.ndarray | int) -> pd.DatetimeIndex:
    """Inverse of week_index."""
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
    return pd.DatetimeIndex(EPOCH + idx * 7)


def christmas_shift_days(week_end: pd.Timestamp, aligned_end: pd.Timestamp) -> int:
    """Days by which a week ends later relative to its year's Christmas Day than its aligned week
    a year before ends relative to theirs (December weeks aligned on Christmas; 0 elsewhere).

    Christmas moves one weekday a year (two after a leap day): 2010 Saturday, 2011 Sunday,
    2012 Tuesday. The Saturday..Friday week before Christmas held Dec 18-24 in 2010, Dec 17-23 in
    2011 (-1 day: Christmas Eve moved into the Christmas week) and Dec 15-21 in 2012 (-2 days).
    """
    this = (week_end - pd.Timestamp(week_end.year, 12, 25)).days
    before = (aligned_end - pd.Timestamp(aligned_end.year, 12, 25)).days
    return this - before


@lru_cache(maxsize=4096)
def _week_info(widx: int) -> tuple[bool, float, float, int, int, int, int, bool]:
    """is_holiday, weeks to Thanksgiving, weeks to Christmas, week of year, aligned-lag index,
    which ALIGN_WINDOWS entry aligned it (0: none, 1..), the Christmas shift in days, is Easter."""
    date = pd.Timestamp(EPOCH + np.timedelta64(7 * widx, "D"))
    year = date.year
    hw = {y: holiday_weeks(y) for y in (year - 1, year, year + 1)}
    is_hol = any(date == hw[year][name] for name in HOLIDAYS)

    def nearest(name: str) -> float:
        diffs = [(hw[y][name] - date).days // 7 for y in hw]
        return float(min(diffs, key=abs))

    aligned, source, shift = widx - 52, 0, 0
    for k, (name, lo, hi) in enumerate(ALIGN_WINDOWS, start=1):
        offset = (date - hw[year][name]).days // 7
        if lo <= offset <= hi:
            prev = hw[year - 1][name] + pd.Timedelta(weeks=offset)
            aligned, source = int(week_index(prev)[0]), k
            if name == "christmas" and offset <= 0:  # December weeks up to Christmas week
                shift = christmas_shift_days(date, prev)
                if abs(shift) > 3:  # e.g. 2016 against 2015: the nearer week a year before
                    aligned += int(np.sign(shift))
                    shift -= 7 * int(np.sign(shift))
            break
    week_of_year = int(date.isocalendar().week)
    easter = date == hw[year]["easter"]
    return is_hol, nearest("thanksgiving"), nearest("christmas"), week_of_year, aligned, source, shift, easter


def is_holiday_week(dates: object) -> np.ndarray | bool:
    """Whether each week (named by any day in it) is one of the four flagged holiday weeks."""
    scalar = np.ndim(dates) == 0 and not isinstance(dates, pd.Index | list | tuple)
    fridays = [week_ending(d) for d in np.atleast_1d(dates)] if scalar else [week_ending(d) for d in dates]
    out = np.array([_week_info(int(week_index(f)[0]))[0] for f in fridays], dtype=bool)
    return bool(out[0]) if scalar else out


def calendar_table(week_indices: Iterable[int]) -> dict[str, np.ndarray]:
    """Calendar features for week indices: is_holiday, weeks_to_thanksgiving, weeks_to_christmas,
    week_of_year, aligned_lag (the week index a year before with the same holiday position),
    align_source (1-based index of the ALIGN_WINDOWS entry that aligned it, 0 for a plain 52-week
    lag), christmas_shift (christmas_shift_days / 7: the share of a week by which the aligned week
    last year must be moved to cover the same days before Christmas) and is_easter."""
    rows = [_week_info(int(w)) for w in week_indices]
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    return {
        "is_holiday": np.array(cols[0], dtype=bool),
        "weeks_to_thanksgiving": np.array(cols[1], dtype=float),
        "weeks_to_christmas": np.array(cols[2], dtype=float),
        "week_of_year": np.array(cols[3], dtype=float),
        "aligned_lag": np.array(cols[4], dtype=np.int64),
        "align_source": np.array(cols[5], dtype=np.int8),
        "christmas_shift": np.array(cols[6], dtype=float) / 7.0,
        "is_easter": np.array(cols[7], dtype=bool),
    }


def aligned_lag_week(date: object) -> pd.Timestamp:
    """The week a year before `date` at the same position relative to Thanksgiving, Christmas or
    Easter (a plain 52-week lag elsewhere)."""
    return week_date(_week_info(int(week_index(week_ending(date))[0]))[4])[0]
