"""The weekly loop's alerts on what arrived: the week's file, store totals, departments, and a digest.

- actuals_feed (warning): a week of actual sales that did not arrive (overdue, or a hole among the
  weeks that did), a store that sent nothing, a week counted twice (most stores outside their range
  the same way) or the week before sent again (most series equal to last week's to the cent).
- store_total (warning): a store's total shifted from its plan for weeks running, beyond the other
  stores' common miss and its own usual one (app/loop/exceedance.py).
- series (warning): a department of one store collapsed below its 95% range while its peers held.
- dept_total (warning): a department's total across the stores selling it shifted outside its 95%
  range for a run of weeks (a chain-wide level shift of the department).
- department (info): a department outside its 95% range in most stores this week (unless its total
  already warns).
- digest (info): one per store, refreshed weekly, gathering its department-level notices (bias from
  the tracking signal, single misses outside the 95% range) and a single miss of its total, so an
  operator reads one line per store instead of one per department.

Every alert says what was seen against what was expected, carries a `url` to the store or series page
in its details, and closes when its condition clears (the rules are recomputed each week).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.forecasting import calendar
from app.forecasting.forecaster import Forecaster
from app.loop.exceedance import money, running
from app.monitoring import alerts

log = logging.getLogger(__name__)

FEED, STORE, SERIES, DIGEST, DEPARTMENT = "actuals_feed", "store_total", "series", "digest", "department"
DEPT_TOTAL = "dept_total"
FEED_WINDOW = 13  # weeks a hole among the arrived weeks is reported for
OVERDUE_WEEKS = 4  # an overdue week is reported while the newest week is at most this far behind
HOLE_SHARE = 0.5  # a week with fewer rows than this share of a typical week is missing
REPEAT_SHARE = 0.5  # series equal to the week before to the cent: the week before sent again
REPEAT_WINDOW = 8
MAX_LISTED = 8


def dept_url(dept: int) -> str:
    return f"/chain/departments/{int(dept)}"


def store_url(store: int) -> str:
    return f"/store?store={int(store)}"


def series_url(store: int, dept: int) -> str:
    return f"/series/{int(store)}/{int(dept)}"


def expected_week(now: dt.datetime, due_days: int) -> dt.date:
    """The newest week whose actual sales are due by `now` (a week is due `due_days` after its Friday)."""
    day = (now - dt.timedelta(days=due_days)).date()
    return day - dt.timedelta(days=(day.weekday() - 4) % 7)


def feed_findings(forecaster: Forecaster, now: dt.datetime | None, due_days: int) -> list[dict[str, Any]]:
    """Missing weeks, stores that sent nothing, and weeks that repeat the week before."""
    panel = forecaster.panel
    values = panel.values
    last = values.shape[1] - 1
    first = max(0, last - FEED_WINDOW + 1)
    known = ~np.isnan(values[:, first : last + 1])
    counts = known.sum(axis=0)
    typical = float(np.median(counts)) if len(counts) else 0.0
    found: list[dict[str, Any]] = []
    trained = str(forecaster.metadata.get("origin") or "")
    for j, count in enumerate(counts):
        week = calendar.week_date(panel.first_week + first + j)[0].date()
        if count < HOLE_SHARE * typical and week.isoformat() > trained:
            found.append({"finding": "missing", "week": week.isoformat(), "rows": int(count)})
    if now is not None:
        due = expected_week(now, due_days)
        through = forecaster.data_through
        behind = (due - through).days // 7
        if 0 < behind <= OVERDUE_WEEKS:
            for k in range(1, behind + 1):
                week = through + dt.timedelta(weeks=k)
                found.append({"finding": "missing", "week": week.isoformat(), "rows": 0, "overdue": True})
    if last >= 4 and counts[-1] >= HOLE_SHARE * typical:
        newest, before = known[:, -1], ~np.isnan(values[:, last - 4 : last]).all(axis=1)
        stores = np.unique(panel.store)
        sent = np.array([newest[panel.store == s].any() for s in stores])
        steady = np.array([before[panel.store == s].any() for s in stores])
        week = calendar.week_date(panel.first_week + last)[0].date().isoformat()
        for store in stores[steady & ~sent]:
            found.append({"finding": "store_missing", "week": week, "store": int(store)})
    for col in range(max(1, last - REPEAT_WINDOW + 1), last + 1):
        a, b = values[:, col], values[:, col - 1]
        both = ~np.isnan(a) & ~np.isnan(b) & (np.abs(b) > 0)
        if both.sum() >= 10 and float(np.mean(a[both] == b[both])) >= REPEAT_SHARE:
            week = calendar.week_date(panel.first_week + col)[0].date()
            found.append(
                {
                    "finding": "repeated",
                    "week": week.isoformat(),
                    "series": int(both.sum()),
                    "equal": int(np.sum(a[both] == b[both])),
                }
            )
    return found


def _feed_alert(session: Session, finding: dict[str, Any]) -> str:
    week = finding["week"]
    kind = finding["finding"]
    if kind == "missing":
        key = f"missing {week}"
        message = (
            f"no actual sales for the week of {week}: due by now, nothing arrived"
            if finding.get("overdue")
            else f"the week of {week} has {finding['rows']:,} rows of actual sales where other weeks have "
            "thousands: a week missing between weeks that arrived"
        )
        alerts.open_alert(session, FEED, "warning", message, {**finding, "url": "/monitoring"}, key=key)
    elif kind == "store_missing":
        store = finding["store"]
        key = f"store {store} missing {week}"
        message = f"store {store} sent no actual sales for the week of {week}, having sent every week before"
        details = {**finding, "stores": [store], "url": store_url(store)}
        alerts.open_alert(session, FEED, "warning", message, details, key=key, store=store)
    elif kind == "repeated":
        key = f"repeated {week}"
        message = (
            f"the week of {week}: {finding['equal']:,} of {finding['series']:,} series equal the week "
            "before to the cent: the week before sent again?"
        )
        alerts.open_alert(session, FEED, "warning", message, {**finding, "url": "/monitoring"}, key=key)
    else:  # doubled: most stores off their range the same way
        key = f"chain {week}"
        message = (
            f"the week of {week}: {finding['outside']} of {finding['store_count']} stores "
            f"{finding['direction']} "
            f"their 95% range; chain total {money(finding['actual'])} against {money(finding['prediction'])} "
            f"forecast ({finding['actual'] / max(finding['prediction'], 1.0):.2f}x): a week counted twice "
            "or a wrong file?"
        )
        alerts.open_alert(session, FEED, "warning", message, {**finding, "url": "/monitoring"}, key=key)
    return key


def _range(seen: dict[str, Any]) -> str:
    low, high = money(seen["lower_95"]), money(seen["upper_95"])
    return f"{money(seen['actual'])} against a 95% range of {low}-{high}"


def raise_alerts(
    session: Session,
    exceed: dict[str, Any],
    feed: list[dict[str, Any]],
    bias_notices: list[dict[str, Any]],
) -> dict[str, int]:
    """Open or refresh this week's alerts and resolve those whose condition cleared."""
    wanted: dict[str, set[str]] = {
        FEED: set(),
        STORE: set(),
        SERIES: set(),
        DIGEST: set(),
        DEPARTMENT: set(),
        DEPT_TOTAL: set(),
    }
    shifted = set()
    for seen in exceed.get("dept_totals", []):
        dept = seen["dept"]
        key = f"dept {dept}"
        wanted[DEPT_TOTAL].add(key)
        shifted.add(dept)
        message = (
            f"department {dept} across stores: {_range(seen)}, {running(seen['weeks_running'])} "
            f"({seen['direction']} {seen['against']}; {seen['stores_off']} of {seen['store_count']} stores "
            f"{seen['direction']} their forecast this week)"
        )
        details = {**seen, "departments": [dept], "url": dept_url(dept)}
        alerts.open_alert(session, DEPT_TOTAL, "warning", message, details, key=key, dept=dept)
    for seen in exceed.get("departments", []):
        dept = seen["dept"]
        if dept in shifted:
            continue
        key = f"dept {dept}"
        wanted[DEPARTMENT].add(key)
        total, forecast = money(seen["actual"]), money(seen["prediction"])
        message = (
            f"dept {dept}: {seen['direction']} its 95% range in {seen['outside']} of {seen['store_count']} "
            f"stores in the week of {seen['week']} (chain total {total} against {forecast} forecast): "
            "a change across the chain, or a season misjudged"
        )
        details = {**seen, "departments": [dept], "url": dept_url(dept)}
        alerts.open_alert(session, DEPARTMENT, "info", message, details, key=key, dept=dept)
    for finding in [*feed, *({**c, "finding": "chain"} for c in exceed.get("chain", []))]:
        wanted[FEED].add(_feed_alert(session, finding))
    warned_stores = set()
    for seen in exceed.get("stores", []):
        store = seen["store"]
        key = f"store {store}"
        wanted[STORE].add(key)
        warned_stores.add(store)
        worst = seen.get("departments") or []
        furthest = f"; furthest off: dept {', '.join(map(str, worst))}" if worst else ""
        beyond = (
            f", {abs(seen['shift']):.0%} beyond the other stores' and its own usual miss"
            if "shift" in seen
            else ""
        )
        message = (
            f"store {store}: total {_range(seen)}, {running(seen['weeks_running'])} "
            f"({seen['direction']} {seen['against']}{beyond}){furthest}"
        )
        details = {**seen, "stores": [store], "url": store_url(store)}
        alerts.open_alert(session, STORE, "warning", message, details, key=key, store=store)
    warned_series = set()
    for seen in exceed.get("series", []):
        store, dept = seen["store"], seen["dept"]
        key = f"series {store}-{dept}"
        wanted[SERIES].add(key)
        warned_series.add((store, dept))
        message = (
            f"store {store} dept {dept}: {_range(seen)}, {running(seen['weeks_running'])} "
            f"({seen['direction']} {seen['against']}, while the department held up in other stores)"
        )
        details = {**seen, "stores": [store], "departments": [dept], "url": series_url(store, dept)}
        alerts.open_alert(session, SERIES, "warning", message, details, key=key, store=store, dept=dept)
    by_store: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for notice in [*exceed.get("notices", []), *bias_notices]:
        if notice.get("dept") is None and notice["store"] in warned_stores:
            continue
        if (notice["store"], notice.get("dept")) in warned_series:
            continue
        by_store[int(notice["store"])].append(notice)
    for store, notices in sorted(by_store.items()):
        key = f"store {store}"
        wanted[DIGEST].add(key)
        parts = [_notice_text(n) for n in notices[:MAX_LISTED]]
        more = f"; and {len(notices) - MAX_LISTED} more" if len(notices) > MAX_LISTED else ""
        message = f"store {store}, {len(notices)} notice(s) this week: " + "; ".join(parts) + more
        departments = sorted({int(n["dept"]) for n in notices if n.get("dept") is not None})
        details = {
            "stores": [store],
            "departments": departments,
            "notices": notices[:50],
            "url": store_url(store),
        }
        alerts.open_alert(session, DIGEST, "info", message, details, key=key, store=store)
    cleared = 0
    for kind, keys in wanted.items():
        for alert in alerts.open_alerts(session, kind):
            if str((alert.details or {}).get("key", "")) not in keys:
                cleared += alerts.resolve_kind(session, kind, str((alert.details or {}).get("key", "")))
    return {kind: len(keys) for kind, keys in wanted.items()} | {"cleared": cleared}


def _notice_text(notice: dict[str, Any]) -> str:
    if "signal" in notice:
        return (
            f"dept {notice['dept']} forecasts persistently {notice['direction']} actual sales "
            f"(tracking signal {notice['signal']:+.1f} over {notice['weeks']} weeks, "
            f"{notice['bias_share']:+.0%} of sales)"
        )
    what = "total" if notice.get("dept") is None else f"dept {notice['dept']}"
    return f"{what} {_range(notice)}"
