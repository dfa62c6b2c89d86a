"""Tracking signal: which series are persistently biased, the demand planner's standard check.

For each series, over the last `window` weeks of next-week (lag 1) published forecasts with actuals:
tracking signal = cumulative error (actual - forecast) / mean absolute error. It stays within a few
units while errors cancel and grows towards +-window when every week misses the same way. A series is
flagged when the signal passes `limit` over enough weeks and the bias is material; many flagged
departments of one store become one store-level alert, and the others are notices in their store's
weekly digest. Alerts close when the signal clears.
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
from sqlalchemy.orm import Session

from app.loop.accuracy import latest_runs
from app.monitoring import alerts
from app.storage import ActualSale, ForecastRow, Storage

log = logging.getLogger(__name__)

KIND = "bias"


@dataclass(frozen=True)
class TrackingSettings:
    window: int = 13  # weeks
    # On the real 2012 replay, |signal| >= 4 alone flagged 530-600 of 2,900 series every week (errors of
    # one series are correlated week to week); with these three conditions 26-57 series (1-2%) are
    # flagged, each off by $1,000 a week and a fifth of its sales for most of a quarter.
    limit: float = 6.0  # |tracking signal| that flags a series
    min_weeks: int = 8  # weeks with actuals in the window before a series can be judged
    min_share: float = 0.20  # |cumulative error| / actual sales: smaller biases are not worth an alert
    min_dollars: float = 1000.0  # |mean weekly error|: a planner acts on dollars, not on ratios
    store_rollup: int = 5  # flagged departments of one store that make one store-level alert ...
    store_rollup_share: float = 0.25  # ... when they are also this share of the store's departments
    lag: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrackingSettings:
        return cls(
            window=int(config.get("TRACKING_WINDOW_WEEKS", cls.window)),
            limit=float(config.get("TRACKING_SIGNAL_LIMIT", cls.limit)),
            min_share=float(config.get("TRACKING_MIN_BIAS_SHARE", cls.min_share)),
            min_dollars=float(config.get("TRACKING_MIN_BIAS_DOLLARS", cls.min_dollars)),
            store_rollup=int(config.get("TRACKING_STORE_ROLLUP", cls.store_rollup)),
            store_rollup_share=float(config.get("TRACKING_STORE_ROLLUP_SHARE", cls.store_rollup_share)),
        )


def tracking_signals(
    storage: Storage, lineage: str, until: dt.date, settings: TrackingSettings = TrackingSettings()
) -> pd.DataFrame:
    """Per series: weeks, tracking signal, bias share and flag, over the window ending at `until`."""
    rows = ForecastRow.__table__
    since = until - dt.timedelta(weeks=settings.window)
    query = (
        select(rows.c.store, rows.c.dept, rows.c.prediction, ActualSale.weekly_sales)
        .join(
            ActualSale,
            (ActualSale.store == rows.c.store)
            & (ActualSale.dept == rows.c.dept)
            & (ActualSale.week == rows.c.week),
        )
        .where(
            rows.c.lag == settings.lag,
            rows.c.week > since,
            rows.c.week <= until,
            rows.c.run_id.in_(latest_runs(lineage)),
            ActualSale.lineage == lineage,
        )
    )
    with storage.engine.connect() as connection:
        frame = pd.DataFrame(
            connection.execute(query).all(), columns=["store", "dept", "prediction", "actual"]
        )
    columns = ["store", "dept", "weeks", "signal", "bias_share", "bias", "flagged"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["error"] = frame["actual"] - frame["prediction"]
    frame["abs_error"] = frame["error"].abs()
    frame["abs_actual"] = frame["actual"].abs()
    g = frame.groupby(["store", "dept"]).agg(
        weeks=("error", "size"),
        error=("error", "sum"),
        mad=("abs_error", "mean"),
        actual=("abs_actual", "sum"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        g["signal"] = np.where(g["mad"] > 0, g["error"] / g["mad"], 0.0)
        g["bias_share"] = np.where(g["actual"] > 0, g["error"] / g["actual"], 0.0)
    g["bias"] = g["error"] / g["weeks"]
    g["flagged"] = (
        (g["weeks"] >= settings.min_weeks)
        & (g["signal"].abs() >= settings.limit)
        & (g["bias_share"].abs() >= settings.min_share)
        & (g["bias"].abs() >= settings.min_dollars)
    )
    return g.reset_index()[columns]


def _direction(signal: float) -> str:
    return "below" if signal > 0 else "above"  # positive signal: actual sales above the forecasts


def flag_biased(
    session: Session, signals: pd.DataFrame, settings: TrackingSettings = TrackingSettings()
) -> dict:
    """Open one store-level alert for a store with many flagged series, resolve those that cleared; the
    other flagged series come back as `notices` for the store's weekly digest (app/loop/watch.py)."""
    flagged = signals[signals["flagged"].astype(bool)]
    judged = signals.groupby("store").size()
    wanted: set[str] = set()
    notices: list[dict[str, Any]] = []
    stores = 0
    for store, group in flagged.groupby("store"):
        store = int(store)
        if len(group) >= max(settings.store_rollup, settings.store_rollup_share * judged[store]):
            key = f"store {store}"
            wanted.add(key)
            stores += 1
            depts = ", ".join(str(int(d)) for d in group["dept"])
            message = (
                f"store {store}: {len(group)} of {judged[store]} departments persistently biased over "
                f"the last {settings.window} weeks (departments {depts})"
            )
            details = {
                "departments": [int(d) for d in group["dept"]],
                "signals": group["signal"].round(2).tolist(),
                "stores": [store],
                "url": f"/store?store={store}",
            }
            alerts.open_alert(session, KIND, "warning", message, details, key=key, store=store)
            continue
        for row in group.itertuples():
            notices.append(
                {
                    "store": store,
                    "dept": int(row.dept),
                    "direction": _direction(row.signal),
                    "signal": round(float(row.signal), 2),
                    "bias_share": round(float(row.bias_share), 4),
                    "weeks": int(row.weeks),
                }
            )
    cleared = 0
    for alert in alerts.open_alerts(session, KIND):
        if str((alert.details or {}).get("key", "")) not in wanted:
            alerts.resolve(session, alert.id)
            cleared += 1
    flags = int(len(flagged))
    return {"series_flagged": flags, "store_alerts": stores, "cleared": cleared, "notices": notices}
