"""Store totals and departments against their calibrated intervals: faults caught in weeks, not quarters.

The tracking signal needs most of a quarter of biased weeks before it speaks; a store whose sales halve
falls outside its own 95% interval the week it happens. Each week the next-week (lag 1) published
forecasts of the last `history_weeks` weeks are joined with their actual sales and turned into
standardised errors z = (actual - forecast) / (half the 95% interval / 1.96); for a store total the
interval is the Forecaster's own `total_bounds` of its departments. A CUSUM of z per direction
(S = max(0, S + |z| - k)) adds up a run of misses the same way and forgets ordinary noise; a store or a
department is at warning when its CUSUM passes its limit (or, for a store, when it is outside its 95%
range `store_run` weeks running the same way) while the newest week is still off the same
way (outside the 80% range for a store; outside the 95% range, and by a material share and amount, for
a department), and the alert closes with the first week back. A department of a store at warning is
named in the store's alert rather than alerted on its own.

A week in which most stores miss the same way is not a fault of those stores but of the week's file
(a week counted twice): it is one chain-level alert, and that week is left out of every store's CUSUM.
The computation is stateless (recomputed from the stored forecasts and actuals each week), so a
restarted or replayed loop reaches the same alerts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from app.forecasting.forecaster import Forecaster
from app.loop.accuracy import latest_runs
from app.storage import ActualSale, ForecastRow, Storage

log = logging.getLogger(__name__)

Z95 = 1.959964
Z80 = 1.281552
BOUNDS = ["lower_80", "upper_80", "lower_95", "upper_95"]


@dataclass(frozen=True)
class ExceedanceSettings:
    history_weeks: int = 8  # weeks of standardised errors a CUSUM looks back over
    store_k: float = 1.0  # allowance per week: misses within it are forgotten
    store_h: float = 4.0  # a store total's CUSUM at or over this: warning
    store_run: int = 2  # ... or this many weeks running outside its 95% range the same way
    dept_k: float = 1.0
    dept_h: float = 8.0  # a department's CUSUM at or over this, ...
    dept_min_share: float = 0.5  # ... missing its forecast by this share this week ...
    dept_min_dollars: float = 3000.0  # ... and by this many dollars: warning
    notice_min_share: float = 0.3  # a department outside its 95% range by this share ...
    notice_min_dollars: float = 3000.0  # ... and this many dollars goes into the store's digest
    chain_share: float = 0.6  # stores outside their 95% range the same way: the week's file is at fault

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExceedanceSettings:
        return cls(
            store_h=float(config.get("STORE_CUSUM_LIMIT", cls.store_h)),
            store_run=int(config.get("STORE_WEEKS_OUTSIDE", cls.store_run)),
            dept_h=float(config.get("DEPT_CUSUM_LIMIT", cls.dept_h)),
        )


def lag1_errors(storage: Storage, lineage: str, until: dt.date, weeks: int) -> pd.DataFrame:
    """Lag-1 published forecasts of the `weeks` weeks up to `until`, with their actual sales."""
    rows = ForecastRow.__table__
    since = until - dt.timedelta(weeks=weeks)
    query = (
        select(
            rows.c.store,
            rows.c.dept,
            rows.c.week,
            rows.c.prediction,
            rows.c.lower_80,
            rows.c.upper_80,
            rows.c.lower_95,
            rows.c.upper_95,
            ActualSale.weekly_sales,
        )
        .join(
            ActualSale,
            (ActualSale.store == rows.c.store)
            & (ActualSale.dept == rows.c.dept)
            & (ActualSale.week == rows.c.week),
        )
        .where(
            rows.c.lag == 1,
            rows.c.week > since,
            rows.c.week <= until,
            rows.c.run_id.in_(latest_runs(lineage)),
            ActualSale.lineage == lineage,
        )
    )
    columns = ["store", "dept", "week", "prediction", *BOUNDS, "actual"]
    with storage.engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).all(), columns=columns)


def _z(actual: np.ndarray, prediction: np.ndarray, half95: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.asarray(half95, dtype=float), 1.0) / Z95
    return (np.asarray(actual, dtype=float) - np.asarray(prediction, dtype=float)) / scale


def store_totals(frame: pd.DataFrame, forecaster: Forecaster) -> pd.DataFrame:
    """Per store and week: actual and forecast totals, the 95% range (total_bounds) and z."""
    out = []
    half80 = ((frame["upper_80"] - frame["lower_80"]) / 2).to_numpy(float)
    for (store, week), idx in frame.groupby(["store", "week"]).indices.items():
        bounds = forecaster.total_bounds(frame["prediction"].to_numpy(float)[idx], half80[idx], 1)
        out.append(
            {
                "store": int(store),
                "week": week,
                "actual": float(frame["actual"].to_numpy(float)[idx].sum()),
                "prediction": bounds["prediction"],
                "lower_95": bounds["lower_95"],
                "upper_95": bounds["upper_95"],
            }
        )
    totals = pd.DataFrame(out, columns=["store", "week", "actual", "prediction", "lower_95", "upper_95"])
    totals["z"] = _z(totals["actual"], totals["prediction"], totals["upper_95"] - totals["prediction"])
    return totals.sort_values(["store", "week"]).reset_index(drop=True)


def chain_weeks(totals: pd.DataFrame, share: float) -> dict[Any, dict[str, Any]]:
    """Weeks in which at least `share` of the stores fall outside their 95% range the same way."""
    found = {}
    for week, group in totals.groupby("week"):
        n = len(group)
        above, below = int((group["z"] > Z95).sum()), int((group["z"] < -Z95).sum())
        if n >= 3 and max(above, below) >= share * n:
            found[week] = {
                "week": pd.Timestamp(week).date().isoformat(),
                "stores": n,
                "outside": max(above, below),
                "direction": "above" if above >= below else "below",
                "actual": float(group["actual"].sum()),
                "prediction": float(group["prediction"].sum()),
            }
    return found


def cusum(frame: pd.DataFrame, keys: list[str], k: float) -> pd.DataFrame:
    """Per key, at its newest week: the CUSUM of z up (S+) and down (S-), the weeks it has run, and the
    weeks running outside the 95% range its way."""
    rows = []
    for key, group in frame.sort_values("week").groupby(keys):
        up = down = 0.0
        run_up = run_down = out_up = out_down = 0
        for z in group["z"].to_numpy(float):
            up, down = max(0.0, up + z - k), max(0.0, down - z - k)
            run_up, run_down = (run_up + 1 if up > 0 else 0), (run_down + 1 if down > 0 else 0)
            out_up, out_down = (out_up + 1 if z > Z95 else 0), (out_down + 1 if z < -Z95 else 0)
        last = group.iloc[-1]
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "week": last["week"],
                "up": up,
                "down": down,
                "cusum": max(up, down),
                "run": run_up if up >= down else run_down,
                "outside": out_up if up >= down else out_down,
                "direction": "above" if up >= down else "below",
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "week", "up", "down", "cusum", "run", "outside", "direction"])


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


def _worst(frame: pd.DataFrame, store: int, week: dt.date, direction: str, count: int = 5) -> list[int]:
    """The departments of a store furthest outside their 95% range this week in the store's direction."""
    rows = frame[(frame["store"] == store) & (frame["week"] == week)]
    rows = rows[rows["z"] > Z95] if direction == "above" else rows[rows["z"] < -Z95]
    miss = (rows["actual"] - rows["prediction"]).abs()
    return [int(d) for d in rows.loc[miss.sort_values(ascending=False).index, "dept"].head(count)]


def evaluate(
    storage: Storage, forecaster: Forecaster, lineage: str, today: dt.date, settings: ExceedanceSettings
) -> dict[str, Any]:
    """The week's findings: chain-level weeks, store and department warnings, and digest notices."""
    frame = lag1_errors(storage, lineage, today, settings.history_weeks)
    result: dict[str, Any] = {"chain": [], "stores": [], "series": [], "notices": []}
    if frame.empty:
        return result
    frame["z"] = _z(frame["actual"], frame["prediction"], frame["upper_95"] - frame["prediction"])
    totals = store_totals(frame, forecaster)
    chain = chain_weeks(totals, settings.chain_share)
    result["chain"] = list(chain.values())
    clean = totals[~totals["week"].isin(list(chain))]
    newest = pd.Timestamp(today).date()
    this_week = clean[clean["week"] == newest].set_index("store")
    for row in cusum(clean, ["store"], settings.store_k).itertuples(index=False):
        if row.week != newest:
            continue
        now = this_week.loc[row.store]
        seen = {
            "store": int(row.store),
            "week": newest.isoformat(),
            "actual": float(now["actual"]),
            "prediction": float(now["prediction"]),
            "lower_95": float(now["lower_95"]),
            "upper_95": float(now["upper_95"]),
            "z": round(float(now["z"]), 2),
            "cusum": round(float(row.cusum), 2),
            "weeks_running": int(row.run),
            "direction": row.direction,
        }
        toward = float(now["z"]) if row.direction == "above" else -float(now["z"])
        if (row.cusum >= settings.store_h or row.outside >= settings.store_run) and toward > Z80:
            result["stores"].append({**seen, "departments": _worst(frame, row.store, newest, row.direction)})
        elif abs(now["z"]) > Z95:
            result["notices"].append({**seen, "dept": None})
    warned = {seen["store"] for seen in result["stores"]}
    series = frame[~frame["week"].isin(list(chain)) & ~frame["store"].isin(warned)]
    now_series = series[series["week"] == newest].set_index(["store", "dept"])
    for row in cusum(series, ["store", "dept"], settings.dept_k).itertuples(index=False):
        if row.week != newest:
            continue
        now = now_series.loc[(row.store, row.dept)]
        miss = float(now["actual"] - now["prediction"])
        share = abs(miss) / max(abs(float(now["prediction"])), 1.0)
        seen = {
            "store": int(row.store),
            "dept": int(row.dept),
            "week": newest.isoformat(),
            "actual": float(now["actual"]),
            "prediction": float(now["prediction"]),
            "lower_95": float(now["lower_95"]),
            "upper_95": float(now["upper_95"]),
            "z": round(float(now["z"]), 2),
            "cusum": round(float(row.cusum), 2),
            "weeks_running": int(row.run),
            "direction": row.direction,
        }
        outside = abs(float(now["z"])) > Z95
        if (
            row.cusum >= settings.dept_h
            and outside
            and share >= settings.dept_min_share
            and abs(miss) >= settings.dept_min_dollars
        ):
            result["series"].append(seen)
        elif outside and share >= settings.notice_min_share and abs(miss) >= settings.notice_min_dollars:
            result["notices"].append(seen)
    return result
