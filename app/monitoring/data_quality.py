"""Data quality of ingested actual sales: what a new batch says about itself before it joins the history.

A batch is reported, never silently absorbed: new series, series that vanished (sold in every one of
the last weeks of history, absent from the newest week; 671 real series have ordinary gaps), duplicate
rows, late weeks (older than the newest week already known) and values far outside a series' history
(beyond its quartiles by OUTLIER_IQRS interquartile ranges, and beyond OUTLIER_SCALES times its typical
size). `data_quality` returns the findings and logs them; `report_data_quality` also opens (or
resolves) the "data_quality" alert.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from app.monitoring import alerts

log = logging.getLogger(__name__)

KEYS = ["store", "dept"]
VANISHED_WEEKS = 4  # a series sold in every one of the last weeks of history is expected in the new week
OUTLIER_IQRS = 5.0
OUTLIER_SCALES = 5.0
MIN_HISTORY = 8  # weeks of a series' history before its values are judged
MAX_LISTED = 50
WARNING_SHARE = 0.01  # outliers or vanished series above this share of the batch: a warning, else info


def _dates(frame: pd.DataFrame) -> pd.Series:
    column = "date" if "date" in frame.columns else "week"
    return pd.to_datetime(frame[column])


def _pairs(frame: pd.DataFrame) -> list[list[int]]:
    return [[int(s), int(d)] for s, d in frame[KEYS].drop_duplicates().itertuples(index=False)][:MAX_LISTED]


def data_quality(history: pd.DataFrame, new: pd.DataFrame) -> dict[str, Any]:
    """Findings of a batch `new` against `history` (both store, dept, date, weekly_sales).

    Returns counts and (up to MAX_LISTED) examples per finding, plus "severity": None when clean,
    else "info" or "warning" (duplicates, and outliers or vanished series above WARNING_SHARE).
    """
    history = (
        history.assign(date=_dates(history))
        if len(history)
        else history.assign(date=pd.Series(dtype="datetime64[ns]"))
    )
    new = new.assign(date=_dates(new))
    report: dict[str, Any] = {"rows": int(len(new))}
    if new.empty:
        return {**report, "severity": None, "issues": []}
    dup = new.duplicated(KEYS + ["date"], keep=False)
    report["duplicates"] = {
        "count": int(new[dup].duplicated(KEYS + ["date"]).sum()),
        "examples": _pairs(new[dup]),
    }
    new = new.drop_duplicates(KEYS + ["date"], keep="last")

    known_last = history["date"].max() if len(history) else None
    late = new[new["date"] <= known_last] if known_last is not None else new.iloc[0:0]
    report["late_weeks"] = {
        "count": int(late["date"].nunique()),
        "weeks": sorted(str(d.date()) for d in late["date"].unique())[:MAX_LISTED],
        "rows": int(len(late)),
    }

    history_keys = history[KEYS].drop_duplicates()
    fresh = new.merge(history_keys, on=KEYS, how="left", indicator=True)
    fresh = fresh[fresh["_merge"] == "left_only"]
    report["new_series"] = {"count": int(len(fresh[KEYS].drop_duplicates())), "examples": _pairs(fresh)}

    newest = new["date"].max()
    vanished = new.iloc[0:0][KEYS]
    if len(history):
        recent = history[history["date"] > history["date"].max() - pd.Timedelta(weeks=VANISHED_WEEKS)]
        recent = recent[recent["weekly_sales"].notna()]
        weeks = recent.groupby(KEYS)["date"].nunique()
        recent = weeks[weeks == recent["date"].nunique()].reset_index()[KEYS]  # steady sellers only
        present = new[new["date"] == newest][KEYS].drop_duplicates()
        gone = recent.merge(present, on=KEYS, how="left", indicator=True)
        vanished = gone[gone["_merge"] == "left_only"][KEYS]
    report["vanished_series"] = {
        "count": int(len(vanished)),
        "week": str(newest.date()),
        "examples": _pairs(vanished),
    }

    report["outliers"] = _outliers(history, new)
    issues = [
        k
        for k in ("duplicates", "late_weeks", "new_series", "vanished_series", "outliers")
        if report[k]["count"]
    ]
    serious = report["duplicates"]["count"] > 0 or max(
        report["outliers"]["count"], report["vanished_series"]["count"]
    ) > WARNING_SHARE * max(len(new), 1)
    report["issues"] = issues
    report["severity"] = None if not issues else "warning" if serious else "info"
    if issues:
        log.log(
            logging.WARNING if serious else logging.INFO,
            "data quality of %d new rows: %s",
            len(new),
            ", ".join(f"{k} {report[k]['count']}" for k in issues),
        )
    return report


def _outliers(history: pd.DataFrame, new: pd.DataFrame) -> dict[str, Any]:
    """Values beyond q3 + k*IQR (or below q1 - k*IQR) and more than OUTLIER_SCALES typical sizes away."""
    if history.empty:
        return {"count": 0, "examples": []}
    grouped = history.dropna(subset=["weekly_sales"]).groupby(KEYS)["weekly_sales"]
    stats = pd.DataFrame(
        {
            "q1": grouped.quantile(0.25),
            "q3": grouped.quantile(0.75),
            "median": grouped.median(),
            "typical": grouped.apply(lambda v: float(np.median(np.abs(v)))),
            "weeks": grouped.size(),
        }
    ).reset_index()
    rows = new.merge(stats[stats["weeks"] >= MIN_HISTORY], on=KEYS, how="inner")
    iqr = rows["q3"] - rows["q1"]
    far = np.maximum(OUTLIER_SCALES * np.maximum(rows["typical"], 1.0), 0)
    value = rows["weekly_sales"]
    outside = ((value > rows["q3"] + OUTLIER_IQRS * iqr) | (value < rows["q1"] - OUTLIER_IQRS * iqr)) & (
        np.abs(value - rows["median"]) > far
    )
    flagged = rows[outside]
    examples = [
        {
            "store": int(r.store),
            "dept": int(r.dept),
            "date": str(r.date.date()),
            "weekly_sales": float(r.weekly_sales),
            "history_median": float(r.median),
        }
        for r in flagged.head(MAX_LISTED).itertuples(index=False)
    ]
    return {"count": int(outside.sum()), "examples": examples}


def report_data_quality(session: Session, history: pd.DataFrame, new: pd.DataFrame) -> dict[str, Any]:
    """data_quality(), and the "data_quality" alert opened (info or warning) or resolved accordingly."""
    report = data_quality(history, new)
    if report["severity"] is None:
        alerts.resolve_kind(session, "data_quality")
        return report
    message = "ingested actuals: " + ", ".join(
        f"{report[k]['count']} {k.replace('_', ' ')}" for k in report["issues"]
    )
    alert = alerts.open_alert(session, "data_quality", report["severity"], message, report)
    report["alert_id"] = alert.id
    return report
