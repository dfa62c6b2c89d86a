"""Store totals and departments against their calibrated intervals: faults caught in weeks, not quarters.

The tracking signal needs most of a quarter of biased weeks before it speaks; a store whose sales halve
falls outside its own 95% interval the week it happens. The published forecasts of the last weeks are
joined with their actual sales; a store total's interval is the Forecaster's own store-total interval
of its departments at that lag (totals.with_bounds), widened where it is narrower to the store's own
year-on-year deviation for its single-week notices; a department's total across stores is judged
against its own (a seasonal department misjudged by a week is no fault).

A store's level shift is judged on its ratio to its plan instead, less the ratio every store shares
that week (the median across stores: a holiday or the weather misjudged) and less the store's own usual
ratio (its median over the weeks before). A store that swings far from one year to the next is mostly
one whose forecasts follow it: what makes a shift a fault is a ratio unlike its neighbours' and unlike
its own recent ones, so the same share of sales warns at every store. A store whose sales truly fall
by that share in a fortnight (a competitor opening, a road closed) is warned of as a fault would be:
two weeks of a total cannot tell them apart, and both are worth a look.

A run of misses is judged against the plan published before it began: weeks t-1 and t against the run
from t-2 (lags 1 and 2), and t-2..t against the run from t-3. Next-week forecasts roll forward and chase
a broken store within a week, so a second miss measured against them shrinks; against the earlier plan
it does not. On the 2012 replay a CUSUM of lag-1 standardised errors warned on ordinary spring weeks of
a few stores; these rules did not (docs: benchmarks/bench_faults.py measures them).

- store (warning): the total's shift (as above) at least `store_share_below` below (or
  `store_share_above` above) its plan in every week of such a run; or one week off by
  `store_single_share`, outside its range.
- department (warning): a department that fell below its 95% range in every week of a run, by a share of
  its forecast and a dollar amount, while the same department in the other stores did not (so Easter's
  candy aisle after Easter, low in every store, is no store's fault).
- notice (info, for the store's digest): a store total outside its 95% range or shifted as a run would
  need this week, or a department outside its 95% range.
- department total (warning): a department's total across stores outside its range the same way in
  every week of a run, by `dept_total_below` (or `dept_total_above`) of its plan and a dollar amount.
- department across the chain (info): a department outside its 95% range the same way in most of the
  stores selling it this week (a change of the department everywhere, or a season misjudged).
- chain: a week in which most stores miss the same way, with the chain's total far off its plan, is a
  fault of the week's file (counted twice, a wrong file); it is one chain-level finding and no store's.

The computation is stateless (recomputed from the stored forecasts and actuals each week), so a
restarted or replayed loop reaches the same alerts, and an alert closes with the first week its rule no
longer holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, or_, select

from app.forecasting import calendar
from app.forecasting.forecaster import Forecaster
from app.forecasting.totals import sum_totals, with_bounds
from app.loop.accuracy import latest_runs
from app.storage import ActualSale, ForecastRow, Storage

log = logging.getLogger(__name__)

Z95 = 1.959964
BOUNDS = ["lower_80", "upper_80", "lower_95", "upper_95"]
MAX_RUN = 3  # the longest run of weeks judged against one earlier plan
YEAR = 52
MIN_YEAR_ON_YEAR = 13  # weeks with a year before them needed to measure a department's spread


@dataclass(frozen=True)
class ExceedanceSettings:
    store_share_below: float = 0.12  # a store total this far below its plan in each week of a run ...
    store_share_above: float = 0.14  # ... or this far above, beyond the stores' common miss: warning
    store_usual_weeks: int = 8  # a store's usual ratio to its plan: its median over these weeks ...
    store_usual_min: int = 4  # ... once it has this many of them (else none is assumed)
    store_single_share: float = 0.35  # one week this far off (and outside its 95% range): warning
    store_spread: float = 2.5  # a store's range at least this many times its usual year-on-year deviation
    dept_share: float = 0.8  # a department this far below its plan, relative to its peers, ...
    dept_dollars: float = 3000.0  # ... by this many dollars in each week of a run ...
    dept_store_share: float = 0.01  # ... and by this share of the store's forecast total: warning
    peer_stores: int = 5  # stores selling a department before its peers' median is trusted
    notice_share: float = 0.5  # a department outside its 95% range by this share ...
    notice_dollars: float = 5000.0  # ... and this many dollars goes into the store's digest
    chain_share: float = 0.6  # stores outside their 95% range the same way ...
    chain_total_share: float = 0.25  # ... and the chain's total this far off its plan: the file's fault
    dept_total_below: float = 0.15  # a department's total across stores this far below its plan ...
    dept_total_above: float = 0.25  # ... or this far above, in each week of a run: warning
    dept_total_dollars: float = 20000.0  # ... and off by at least this many dollars each week
    dept_total_spread: float = 3.5  # its range at least this many times its usual year-on-year deviation

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExceedanceSettings:
        return cls(
            store_share_below=float(config.get("STORE_SHIFT_BELOW", cls.store_share_below)),
            store_share_above=float(config.get("STORE_SHIFT_ABOVE", cls.store_share_above)),
            dept_share=float(config.get("DEPT_COLLAPSE_SHARE", cls.dept_share)),
        )


def published_errors(
    storage: Storage, lineage: str, until: dt.date, lags: int = MAX_RUN, history: int = 0
) -> pd.DataFrame:
    """Published forecasts at lags 1..`lags` of the weeks up to `until`, and at lag 1 of the `history`
    weeks before those, with their actual sales and the week each was published from (`origin`)."""
    rows = ForecastRow.__table__
    since = until - dt.timedelta(weeks=lags + 1)
    earliest = since - dt.timedelta(weeks=history)
    query = (
        select(
            rows.c.store,
            rows.c.dept,
            rows.c.week,
            rows.c.lag,
            rows.c.prediction,
            *(rows.c[b] for b in BOUNDS),
            ActualSale.weekly_sales,
        )
        .join(
            ActualSale,
            (ActualSale.store == rows.c.store)
            & (ActualSale.dept == rows.c.dept)
            & (ActualSale.week == rows.c.week),
        )
        .where(
            or_(and_(rows.c.lag <= lags, rows.c.week > since), and_(rows.c.lag == 1, rows.c.week > earliest)),
            rows.c.week <= until,
            rows.c.run_id.in_(latest_runs(lineage)),
            ActualSale.lineage == lineage,
        )
    )
    columns = ["store", "dept", "week", "lag", "prediction", *BOUNDS, "actual"]
    with storage.engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=columns)
    frame["origin"] = [
        w - dt.timedelta(weeks=int(k)) for w, k in zip(frame["week"], frame["lag"], strict=True)
    ]
    frame["z"] = _z(frame["actual"], frame["prediction"], frame["upper_95"] - frame["prediction"])
    return frame


def _z(actual: Any, prediction: Any, half95: Any) -> np.ndarray:
    scale = np.maximum(np.asarray(half95, dtype=float), 1.0) / Z95
    return (np.asarray(actual, dtype=float) - np.asarray(prediction, dtype=float)) / scale


def store_totals(frame: pd.DataFrame, forecaster: Forecaster) -> pd.DataFrame:
    """Per store, week and lag: actual and forecast totals, the 95% range, z and share off."""
    return _totals(frame, forecaster, "store")


def department_totals(
    frame: pd.DataFrame, forecaster: Forecaster, spread: Mapping[int, float] | None = None
) -> pd.DataFrame:
    """Per department, week and lag: its total across the stores selling it, with the count of stores
    summed, judged as a store total is and widened to the department's own `spread` (own_spread): a
    seasonal department's total strays far from its forecast every year, a grocery aisle's does not."""
    return widened(_totals(frame, forecaster, "dept"), "dept", spread)


def store_shifts(totals: pd.DataFrame, peers: int) -> np.ndarray:
    """Each store total's log ratio of actual to forecast, less the median of every store's for the
    same week and lag when at least `peers` stores are judged: a holiday or the weather misjudged moves
    every store's ratio alike, a store's own fault moves its ratio away from the others'."""
    ratio = pd.Series(
        np.log(np.maximum(totals["actual"].to_numpy(float), 1.0))
        - np.log(np.maximum(totals["prediction"].to_numpy(float), 1.0)),
        index=totals.index,
    )
    groups = ratio.groupby([totals["week"], totals["lag"]])
    common = groups.transform("median").where(groups.transform("size") >= peers, 0.0)
    return (ratio - common).to_numpy(float)


def usual_shift(totals: pd.DataFrame, before: dt.date, weeks: int, least: int) -> dict[int, float]:
    """Per store, the median of its next-week `shift` (store_shifts) over the `weeks` weeks before
    `before`, once it has `least` of them: a store the model has misjudged the same way for weeks
    (a new competitor, a refit) is judged on a fresh change, not on the old one."""
    past = totals[(totals["lag"] == 1) & (totals["week"] < before)]
    past = past[past["week"] >= before - dt.timedelta(weeks=weeks)]
    usual = past.groupby("store")["shift"].agg(["median", "size"])
    usual = usual[usual["size"] >= least]
    return {int(k): float(v) for k, v in usual["median"].items()}


def with_shifts(
    totals: pd.DataFrame, earlier: pd.DataFrame, today: dt.date, settings: ExceedanceSettings
) -> pd.DataFrame:
    """`totals` of the weeks judged with each one's `shift` (store_shifts less the store's usual_shift
    over the `earlier` next-week totals and those of the judged weeks before the longest run)."""
    both = pd.concat([earlier, totals], ignore_index=True)
    both["shift"] = store_shifts(both, settings.peer_stores)
    first_run_week = today - dt.timedelta(weeks=MAX_RUN - 1)
    usual = usual_shift(both, first_run_week, settings.store_usual_weeks, settings.store_usual_min)
    out = both.iloc[len(earlier) :].set_index(totals.index)
    out["shift"] = out["shift"] - out["store"].map(usual).fillna(0.0)
    return out


def store_shifted(settings: ExceedanceSettings) -> Any:
    """Whether each store total's shift (with_shifts) is as far off as a run of them must be."""

    def shifted(t: pd.DataFrame) -> pd.Series:
        below = t["shift"] <= np.log1p(-settings.store_share_below)
        above = t["shift"] >= np.log1p(settings.store_share_above)
        return below | above

    return shifted


def widened(totals: pd.DataFrame, key: str, spread: Mapping[int, float] | None) -> pd.DataFrame:
    """Totals whose 95% range is widened, where it is narrower, to prediction x exp(+-spread) of their
    store or department (`key`), with z measured against the side the actual fell on."""
    if not spread or totals.empty:
        return totals
    totals = totals.copy()
    width = totals[key].map(spread).fillna(0.0).to_numpy(float)
    prediction = totals["prediction"].to_numpy(float)
    totals["lower_95"] = np.minimum(totals["lower_95"], prediction * np.exp(-width))
    totals["upper_95"] = np.maximum(totals["upper_95"], prediction * np.exp(width))
    low = totals["actual"].to_numpy(float) < prediction
    half = np.where(low, prediction - totals["lower_95"], totals["upper_95"] - prediction)
    totals["z"] = _z(totals["actual"], prediction, half)
    return totals


def own_spread(forecaster: Forecaster, before: dt.date, factor: float, key: str) -> dict[int, float]:
    """Per store or department (`key`), `factor` times how far its weekly total strayed from the same
    week a year earlier (in log terms, the 90th percentile of the absolute deviation from its median)
    over the year of known sales up to `before`: how much that total moves when nothing is wrong."""
    panel = forecaster.panel
    end = int(calendar.week_index([pd.Timestamp(before)])[0]) - panel.first_week + 1
    start = max(0, end - 2 * YEAR)
    if end - start < YEAR + MIN_YEAR_ON_YEAR:
        return {}
    groups = panel.dept if key == "dept" else panel.store
    block = np.nan_to_num(panel.values[:, start:end], nan=0.0)
    summed = pd.DataFrame(block).groupby(groups).sum()
    values = summed.to_numpy(float)
    ratio = np.log(np.maximum(values[:, YEAR:], 1.0) / np.maximum(values[:, :-YEAR], 1.0))
    deviation = np.abs(ratio - np.median(ratio, axis=1, keepdims=True))
    spread = factor * np.quantile(deviation, 0.9, axis=1)
    return {int(k): float(w) for k, w in zip(summed.index, spread, strict=True)}


def _totals(frame: pd.DataFrame, forecaster: Forecaster, key: str) -> pd.DataFrame:
    """Per `key` (store or dept), week and lag: the summed actual and forecast and the 95% range. Both
    levels take the store formula (the lasting-and-steady model), the one the loop's thresholds were
    measured with; a department's own spread widens its range afterwards (widened)."""
    half80 = forecaster.bucket_only_half_width(
        frame["store"].to_numpy(np.int64),
        frame["dept"].to_numpy(np.int64),
        frame["lag"].to_numpy(np.int64),
        (frame["upper_80"] - frame["prediction"]).to_numpy(float),
    )
    rows = pd.DataFrame(
        {
            "store": frame["store"].to_numpy(),
            "dept": frame["dept"].to_numpy(),
            "date": frame["week"].to_numpy(),
            "horizon": frame["lag"].to_numpy(np.int64),
            "prediction": frame["prediction"].to_numpy(float),
            "actual": frame["actual"].to_numpy(float),
            "half80": half80,
        }
    )
    level = "store" if key == "store" else "department"
    bounded = with_bounds(forecaster.calibrator, "store", sum_totals(level, rows))
    weeks, lags = bounded["date"], bounded["horizon"].astype(int)
    out = pd.DataFrame(
        {
            key: bounded["key"].astype(int),
            "week": weeks,
            "lag": lags,
            "origin": [w - dt.timedelta(weeks=int(k)) for w, k in zip(weeks, lags, strict=True)],
            "actual": bounded["actual"].astype(float),
            "prediction": bounded["prediction"],
            "lower_95": bounded["lower_95"],
            "upper_95": bounded["upper_95"],
            "series": bounded["series"].astype(int),
        }
    )
    out["z"] = _z(out["actual"], out["prediction"], out["upper_95"] - out["prediction"])
    out["share"] = (out["actual"] - out["prediction"]) / np.maximum(out["prediction"].abs(), 1.0)
    return out


def chain_weeks(totals: pd.DataFrame, share: float, total_share: float) -> dict[Any, dict[str, Any]]:
    """Weeks in which at least `share` of the stores fall outside their 95% range the same way (lag 1)
    and the chain's total is at least `total_share` off its plan. A holiday the model misjudged (the
    week before Easter) moves most stores out of range too, but not that far: a week counted twice
    doubles it."""
    found = {}
    for week, group in totals[totals["lag"] == 1].groupby("week"):
        one_way = _one_way(group, share)
        if one_way is None:
            continue
        if abs(one_way["actual"] / max(one_way["prediction"], 1.0) - 1) >= total_share:
            found[week] = {"week": pd.Timestamp(week).date().isoformat(), **one_way}
    return found


def _one_way(group: pd.DataFrame, share: float) -> dict[str, Any] | None:
    """How `group`'s rows (3 or more) fall outside their 95% range, when at least `share` of them do
    so the same way; else None."""
    n = len(group)
    above, below = int((group["z"] > Z95).sum()), int((group["z"] < -Z95).sum())
    if n < 3 or max(above, below) < share * n:
        return None
    return {
        "store_count": n,
        "outside": max(above, below),
        "direction": "above" if above >= below else "below",
        "actual": float(group["actual"].sum()),
        "prediction": float(group["prediction"].sum()),
    }


def money(value: float) -> str:
    """$612k, $1.31M: the figures an operator reads at a glance."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 1e6:
        return f"{sign}${value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{sign}${value / 1e3:.0f}k"
    return f"{sign}${value:.0f}"


RUNNING = {1: "this week", 2: "second week running", 3: "third week running"}


def running(weeks: int) -> str:
    return RUNNING.get(weeks, f"{weeks} weeks running")


def _runs(rows: pd.DataFrame, today: dt.date, keys: list[str], holds: Any) -> dict[Any, int]:
    """Per key, the longest run of weeks up to `today` (2..MAX_RUN) in which `holds(row)` is true in every
    week, each judged against the plan published before the run began."""
    found: dict[Any, int] = {}
    for n in range(2, MAX_RUN + 1):
        origin = today - dt.timedelta(weeks=n)
        plan = rows[(rows["origin"] == origin) & (rows["lag"] <= n)]
        ok = plan.assign(ok=holds(plan)).groupby(keys)["ok"].agg(["all", "size"])
        for key in ok.index[ok["all"] & (ok["size"] == n)]:
            found[key] = n
    return found


def _seen(row: Any, weeks: int, direction: str) -> dict[str, Any]:
    return {
        "week": pd.Timestamp(row.week).date().isoformat(),
        "actual": float(row.actual),
        "prediction": float(row.prediction),
        "lower_95": float(row.lower_95),
        "upper_95": float(row.upper_95),
        "z": round(float(row.z), 2),
        "weeks_running": weeks,
        "direction": direction,
    }


def evaluate(
    storage: Storage, forecaster: Forecaster, lineage: str, today: dt.date, settings: ExceedanceSettings
) -> dict[str, Any]:
    """The week's findings: chain-level weeks, store and department warnings, and digest notices."""
    frame = published_errors(storage, lineage, today, history=settings.store_usual_weeks)
    result: dict[str, Any] = {
        "chain": [],
        "stores": [],
        "series": [],
        "notices": [],
        "departments": [],
        "dept_totals": [],
    }
    if frame.empty:
        return result
    newest = pd.Timestamp(today).date()
    recent = (frame["week"] > newest - dt.timedelta(weeks=MAX_RUN + 1)).to_numpy()
    all_totals = store_totals(frame, forecaster)
    frame = frame[recent]
    if frame.empty:
        return result
    older = (all_totals["week"] <= newest - dt.timedelta(weeks=MAX_RUN + 1)).to_numpy()
    earlier, totals = all_totals[older], all_totals[~older]
    # A file's fault, judged on the stores' ranges and the chain's plan alone.
    chain = chain_weeks(totals, settings.chain_share, settings.chain_total_share)
    before = today - dt.timedelta(weeks=MAX_RUN)  # the weeks judged do not widen their own range
    totals = widened(totals, "store", own_spread(forecaster, before, settings.store_spread, "store"))
    result["chain"] = list(chain.values())
    totals = totals[~totals["week"].isin(list(chain))]
    frame = frame[~frame["week"].isin(list(chain))]
    totals = with_shifts(totals, earlier, newest, settings)
    shifted = store_shifted(settings)
    runs = _runs(totals, newest, ["store"], shifted)
    this_week = totals[(totals["week"] == newest) & (totals["lag"] == 1)].set_index("store")
    for store, now in this_week.iterrows():
        store = int(store)
        direction = "above" if now["z"] > 0 else "below"
        weeks = runs.get(store, 0)
        plan = totals[(totals["store"] == store) & (totals["week"] == newest) & (totals["lag"] == weeks)]
        if weeks:
            signs = totals[
                (totals["store"] == store) & (totals["origin"] == newest - dt.timedelta(weeks=weeks))
            ]
            direction = "above" if (signs["shift"] > 0).all() else "below"
            row = next(plan.itertuples(index=False))
            seen = {
                "store": store,
                **_seen(row, weeks, direction),
                "against": f"the plan of {row.origin}",
                "shift": round(float(np.expm1(row.shift)), 4),
            }
            result["stores"].append({**seen, "departments": _worst(frame, store, newest, direction)})
        elif abs(now["share"]) >= settings.store_single_share and abs(now["z"]) > Z95:
            row = next(this_week.loc[[store]].reset_index().itertuples(index=False))
            seen = {"store": store, **_seen(row, 1, direction), "against": "next week's forecast"}
            result["stores"].append({**seen, "departments": _worst(frame, store, newest, direction)})
        elif abs(now["z"]) > Z95 or bool(shifted(this_week.loc[[store]]).iloc[0]):
            row = next(this_week.loc[[store]].reset_index().itertuples(index=False))
            result["notices"].append({"store": store, "dept": None, **_seen(row, 1, direction)})

    result["dept_totals"] = shifted_departments(frame, forecaster, newest, settings)
    warned = {seen["store"] for seen in result["stores"]}
    series = frame[~frame["store"].isin(warned)].copy()
    store_plan = totals.set_index(["store", "week", "lag"])["prediction"].rename("store_prediction")
    series = series.join(store_plan, on=["store", "week", "lag"])
    series["ratio"] = series["actual"] / np.maximum(series["prediction"].abs(), 1.0)
    peers = series.groupby(["dept", "week", "lag"])["ratio"].agg(["median", "size"])
    series = series.join(peers, on=["dept", "week", "lag"])
    trusted = series["size"] >= settings.peer_stores
    series["relative"] = np.where(
        trusted, series["ratio"] / np.maximum(series["median"], 0.05), series["ratio"]
    )
    floor = 1 - settings.dept_share
    series["peers_held"] = ~trusted | (series["median"] > floor)  # down in every store: no store's fault

    def collapsed(t: pd.DataFrame) -> pd.Series:
        return (
            (t["z"] < -Z95)
            & t["peers_held"]
            & (t["relative"] <= floor)
            & (t["prediction"] - t["actual"] >= settings.dept_dollars)
            & (t["prediction"] - t["actual"] >= settings.dept_store_share * t["store_prediction"])
        )

    result["departments"] = chain_departments(series, newest, settings)
    dept_runs = _runs(series, newest, ["store", "dept"], collapsed)
    now_series = series[(series["week"] == newest) & (series["lag"] == 1)]
    for row in now_series.itertuples(index=False):
        key = (int(row.store), int(row.dept))
        weeks = dept_runs.get(key, 0)
        miss = float(row.actual - row.prediction)
        if weeks:
            plan = series[
                (series["store"] == key[0])
                & (series["dept"] == key[1])
                & (series["week"] == newest)
                & (series["lag"] == weeks)
            ]
            earlier = next(plan.itertuples(index=False))
            seen = {"store": key[0], "dept": key[1], **_seen(earlier, weeks, "below")}
            result["series"].append({**seen, "against": f"the plan of {earlier.origin}"})
        elif (
            abs(float(row.z)) > Z95
            and abs(miss) >= settings.notice_share * max(abs(float(row.prediction)), 1.0)
            and abs(miss) >= settings.notice_dollars
        ):
            direction = "above" if miss > 0 else "below"
            result["notices"].append({"store": key[0], "dept": key[1], **_seen(row, 1, direction)})
    return result


def shifted_departments(
    frame: pd.DataFrame, forecaster: Forecaster, week: dt.date, settings: ExceedanceSettings
) -> list[dict[str, Any]]:
    """Departments whose total across the stores selling them stayed outside its 95% range the same
    way for a run of weeks, by a share of their plan and a dollar amount each week: a level shift of a
    department chain-wide (a supplier, a price, a recall), which no single store's rule sees."""
    before = week - dt.timedelta(weeks=MAX_RUN)
    spread = own_spread(forecaster, before, settings.dept_total_spread, "dept")
    totals = department_totals(frame, forecaster, spread)
    totals = totals[totals["series"] >= settings.peer_stores]
    if totals.empty:
        return []

    big = ((totals["actual"] - totals["prediction"]).abs() >= settings.dept_total_dollars) & (
        totals["prediction"] >= settings.dept_total_dollars  # a department forecast to sell next to nothing
    )
    below = big & (totals["z"] < -Z95) & (totals["share"] <= -settings.dept_total_below)
    above = big & (totals["z"] > Z95) & (totals["share"] >= settings.dept_total_above)
    runs = {
        direction: _runs(totals, week, ["dept"], lambda t, m=mask: m.loc[t.index])
        for direction, mask in (("below", below), ("above", above))
    }
    found = []
    now = frame[(frame["week"] == week) & (frame["lag"] == 1)]
    for direction, dept, weeks in sorted((d, k, n) for d, r in runs.items() for k, n in r.items()):
        run = totals[(totals["dept"] == dept) & (totals["origin"] == week - dt.timedelta(weeks=weeks))]
        row = next(run[run["week"] == week].itertuples(index=False))
        stores = now[now["dept"] == dept]
        off = (
            stores["actual"] > stores["prediction"]
            if direction == "above"
            else stores["actual"] < stores["prediction"]
        )
        found.append(
            {
                "dept": int(dept),
                **_seen(row, weeks, direction),
                "against": f"the plan of {row.origin}",
                "store_count": int(row.series),
                "stores_off": int(off.sum()),
            }
        )
    return found


def chain_departments(
    series: pd.DataFrame, week: dt.date, settings: ExceedanceSettings
) -> list[dict[str, Any]]:
    """Departments outside their 95% range the same way in most of the stores selling them this week:
    a change of the department across the chain (or a season the model misjudged), not one store's."""
    rows = series[(series["week"] == week) & (series["lag"] == 1)]
    found = []
    for dept, group in rows.groupby("dept"):
        one_way = _one_way(group, settings.chain_share)
        if one_way is not None:
            found.append({"dept": int(dept), "week": week.isoformat(), **one_way})
    return found


def _worst(frame: pd.DataFrame, store: int, week: dt.date, direction: str, count: int = 5) -> list[int]:
    """The departments of a store furthest outside their 95% range this week in the store's direction."""
    rows = frame[(frame["store"] == store) & (frame["week"] == week) & (frame["lag"] == 1)]
    rows = rows[rows["z"] > Z95] if direction == "above" else rows[rows["z"] < -Z95]
    miss = (rows["actual"] - rows["prediction"]).abs()
    return [int(d) for d in rows.loc[miss.sort_values(ascending=False).index, "dept"].head(count)]
