"""Store totals and departments against their 95% intervals, the week's file itself, and the store digest.

Four stores of six departments; every week a lag-1 forecast meets its actual, with noise well inside the
interval, and a fault put in at a known week.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from app.forecasting.artifacts import load_forecaster
from app.loop import exceedance, watch
from app.monitoring import alerts, webhook
from tests.loop.rows import add_week

STORES, DEPTS = (1, 2, 3, 4), (1, 2, 3, 4, 5, 6)
FAULT_WEEK = 9
Z95_TWICE = 2 * 1.96


@pytest.fixture(scope="module")
def forecaster(small_artifact):
    return load_forecaster(small_artifact.path)


def _series(k: int, fault=None) -> dict[tuple[int, int], tuple[float, float]]:
    rng = np.random.default_rng(k)
    out = {}
    for store in STORES:
        for dept in DEPTS:
            forecast = 10_000.0 * dept
            actual = forecast * (1 + rng.normal(0, 0.02))
            out[(store, dept)] = (forecast, fault(store, dept, actual) if fault else actual)
    return out


# The rows written here are not the small model's stores' history, whose synthetic stores stray far from
# a year before: the rules are judged on the ranges alone unless a test says otherwise.
DEFAULT = exceedance.ExceedanceSettings(store_spread=0.0)
ACROSS_FOUR = dataclasses.replace(DEFAULT, peer_stores=4)  # department totals of the four stores judged


def _turn(storage, forecaster, week: dt.date, settings=DEFAULT) -> list[tuple]:
    """The open alerts: kind, severity, store, dept, and the departments their details name."""
    found = exceedance.evaluate(storage, forecaster, "L", week, settings)
    with storage.session() as session:
        watch.raise_alerts(session, found, [], [])
        return [
            (a.kind, a.severity, a.store, a.dept, tuple(a.details.get("departments") or ()))
            for a in alerts.open_alerts(session)
        ]


def _replay(
    storage, forecaster, fault, weeks: int = 14, until: int | None = None, settings=None, series=_series
) -> dict[int, list]:
    """Open alerts after each week; the fault applies from FAULT_WEEK (to `until`, when given)."""
    seen = {}
    for k in range(1, weeks + 1):
        on = k >= FAULT_WEEK and (until is None or k <= until)
        week = add_week(storage, k, series(k, fault if on else None))
        seen[k] = _turn(storage, forecaster, week, settings or DEFAULT)
    return seen


def _first(seen: dict[int, list], match) -> int | None:
    return next((k - FAULT_WEEK + 1 for k, found in seen.items() if any(match(a) for a in found)), None)


@pytest.mark.parametrize("settings", [DEFAULT, ACROSS_FOUR])
def test_clean_weeks_raise_no_alert(app, forecaster, settings):
    seen = _replay(app.extensions["storage"], forecaster, None, settings=settings)
    assert all(found == [] for found in seen.values()), seen


@pytest.mark.parametrize("size", [-0.5, -0.2, 0.3])
def test_a_store_level_shift_is_a_warning_naming_the_store_within_two_weeks(app, forecaster, size):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * (1 + size) if s == 2 else a, until=12)
    assert _first(seen, lambda a: a[:3] == ("store_total", "warning", 2)) <= 2
    assert not any(a[0] == "store_total" and a[2] != 2 for found in seen.values() for a in found)
    assert not any(a[0] == "store_total" for a in seen[14])  # closed once the store is back
    with storage.session() as session:
        (alert,) = [a for a in alerts.past_alerts(session) if a.kind == "store_total"]
        assert alert.message.startswith("store 2: total $") and "against a 95% range of $" in alert.message
        assert alert.details["url"] == "/store?store=2" and alert.details["stores"] == [2]
        assert alert.details["direction"] == ("below" if size < 0 else "above")


def test_a_department_collapsing_in_one_store_is_a_warning_within_three_weeks(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * 0.1 if (s, d) == (3, 1) else a)
    assert _first(seen, lambda a: a[:4] == ("series", "warning", 3, 1)) <= 3
    assert not any(a[0] == "store_total" for found in seen.values() for a in found)
    with storage.session() as session:
        (alert,) = alerts.open_alerts(session, "series")
        assert alert.message.startswith("store 3 dept 1: $") and alert.details["url"] == "/series/3/1"


def test_a_large_department_collapsing_is_named_by_its_stores_warning(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * 0.1 if (s, d) == (3, 6) else a)
    assert _first(seen, lambda a: a[:3] == ("store_total", "warning", 3) and 6 in a[4]) <= 2


def test_a_one_week_spike_is_an_info_in_the_stores_digest_and_closes_the_week_after(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * 1.3 if s == 4 else a, until=FAULT_WEEK)
    assert seen[FAULT_WEEK] == [("digest", "info", 4, None, ())]
    assert seen[FAULT_WEEK + 1] == []


def test_a_store_halved_is_a_warning_the_week_it_happens(app, forecaster):
    seen = _replay(app.extensions["storage"], forecaster, lambda s, d, a: a * 0.5 if s == 1 else a)
    assert seen[FAULT_WEEK][0][:3] == ("store_total", "warning", 1)


def test_a_small_one_week_miss_of_a_store_is_an_info_in_its_digest(app, forecaster):
    storage = app.extensions["storage"]
    # 15%: outside the 95% range the small model calibrated for its store totals (about 11%)
    seen = _replay(storage, forecaster, lambda s, d, a: a * 1.15 if s == 4 else a, until=FAULT_WEEK)
    assert seen[FAULT_WEEK] == [("digest", "info", 4, None, ())], seen[FAULT_WEEK]
    assert seen[FAULT_WEEK + 1] == []


def test_a_week_counted_twice_is_one_chain_warning_not_a_warning_per_store(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: 2 * a, until=FAULT_WEEK)
    assert seen[FAULT_WEEK] == [("actuals_feed", "warning", None, None, ())]
    assert not any(a[0] in ("store_total", "series") for found in seen.values() for a in found)
    with storage.session() as session:
        (alert,) = [a for a in alerts.past_alerts(session) if a.kind == "actuals_feed"]
        assert "4 of 4 stores above their 95% range" in alert.message and "counted twice" in alert.message


def test_department_notices_of_a_store_make_one_digest(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * 0.3 if s == 1 and d in (1, 2) else a, until=9)
    assert seen[FAULT_WEEK] == [("digest", "info", 1, None, (1, 2))]
    with storage.session() as session:
        (digest,) = [a for a in alerts.past_alerts(session) if a.kind == "digest"]
        assert digest.details["url"] == "/store?store=1"
        assert "dept 2 $6k against a 95% range of $16k-$24k" in digest.message


def _with_sales(loop_forecaster, sales: pd.DataFrame):
    return loop_forecaster.with_history(sales)


@pytest.fixture(scope="module")
def loop_forecaster(loop_artifact):
    return load_forecaster(loop_artifact.path)


def _arrived(dataset, start: pd.Timestamp, weeks: int) -> pd.DataFrame:
    sales = dataset.sales
    return sales[(sales["date"] > start) & (sales["date"] <= start + pd.Timedelta(weeks=weeks))]


def _findings(forecaster, sales, now=None) -> list[dict]:
    return watch.feed_findings(forecaster.with_history(sales), now, 3)


def test_a_missing_week_is_flagged_the_week_it_is_due_and_while_it_is_a_hole(
    small_dataset, held_back_start, loop_forecaster
):
    sales = _arrived(small_dataset, held_back_start, 4)
    due = (held_back_start + pd.Timedelta(weeks=5)).date()
    now = dt.datetime.combine(due + dt.timedelta(days=3), dt.time(6))
    assert _findings(loop_forecaster, sales, now) == [
        {"finding": "missing", "week": due.isoformat(), "rows": 0, "overdue": True}
    ]
    assert _findings(loop_forecaster, sales, now - dt.timedelta(days=1)) == []  # not due yet
    later = pd.concat([sales, _arrived(small_dataset, held_back_start, 6).query("date > @due")])
    assert [f["week"] for f in _findings(loop_forecaster, later)] == [due.isoformat()]


def test_a_store_that_sent_nothing_and_a_week_sent_again_are_flagged(
    small_dataset, held_back_start, loop_forecaster
):
    sales = _arrived(small_dataset, held_back_start, 6)
    newest = sales["date"].max()
    silent = sales[~((sales["store"] == 2) & (sales["date"] == newest))]
    assert _findings(loop_forecaster, silent) == [
        {"finding": "store_missing", "week": newest.date().isoformat(), "store": 2}
    ]
    before = sales[sales["date"] == newest - pd.Timedelta(weeks=1)].assign(date=newest)
    again = pd.concat([sales[sales["date"] != newest], before])
    (found,) = _findings(loop_forecaster, again)
    assert found["finding"] == "repeated" and found["week"] == newest.date().isoformat()
    assert found["equal"] == found["series"]


def test_the_feed_alerts_say_what_is_missing_and_close_when_it_arrives(app):
    storage = app.extensions["storage"]
    finding = {"finding": "missing", "week": "2012-05-04", "rows": 0, "overdue": True}
    with storage.session() as session:
        watch.raise_alerts(session, {}, [finding], [])
        (alert,) = alerts.open_alerts(session, "actuals_feed")
        assert alert.severity == "warning" and "no actual sales for the week of 2012-05-04" in alert.message
        assert alert.details["week"] == "2012-05-04"
        watch.raise_alerts(session, {}, [], [])
        assert alerts.open_alerts(session, "actuals_feed") == []


def test_the_week_due_follows_the_clock():
    assert watch.expected_week(dt.datetime(2012, 5, 7, 6), 3) == dt.date(2012, 5, 4)
    assert watch.expected_week(dt.datetime(2012, 5, 6, 6), 3) == dt.date(2012, 4, 27)
    assert exceedance.money(612_000) == "$612k" and exceedance.money(1_310_000) == "$1.31M"
    assert dataclasses.is_dataclass(exceedance.ExceedanceSettings)


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_store_alert_reaches_the_webhook_when_it_opens_and_when_it_closes(app, forecaster):
    storage = app.extensions["storage"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    _Receiver.received = []
    try:
        _replay(storage, forecaster, lambda s, d, a: a * 0.5 if s == 2 else a, until=FAULT_WEEK + 1)
        assert webhook.deliver_pending(storage, url)["delivered"] == 2
    finally:
        server.shutdown()
        server.server_close()
    opened, closed = _Receiver.received
    assert (opened["event"], closed["event"]) == ("opened", "resolved")
    assert opened["text"].startswith("[warning] Storecast store_total alert opened store 2: store 2: total $")
    assert opened["alert"]["store"] == 2


def test_a_department_shifting_in_every_store_is_one_chain_level_info_naming_it(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(storage, forecaster, lambda s, d, a: a * 0.7 if d == 3 else a, until=FAULT_WEEK)
    assert ("department", "info", None, 3, (3,)) in seen[FAULT_WEEK]
    assert not any(a[1] == "warning" for found in seen.values() for a in found)
    with storage.session() as session:
        (alert,) = [a for a in alerts.past_alerts(session) if a.kind == "department"]
        assert alert.message.startswith("dept 3: below its 95% range in 4 of 4 stores")


@pytest.mark.parametrize("size", [-0.3, -0.2])
def test_a_department_shifted_in_every_store_is_a_warning_naming_it_in_the_second_week(app, forecaster, size):
    storage = app.extensions["storage"]
    seen = _replay(
        storage, forecaster, lambda s, d, a: a * (1 + size) if d == 3 else a, until=12, settings=ACROSS_FOUR
    )
    assert _first(seen, lambda a: a[:2] == ("dept_total", "warning")) == 2
    assert ("dept_total", "warning", None, 3, (3,)) in seen[FAULT_WEEK + 1]
    assert ("department", "info", None, 3, (3,)) in seen[FAULT_WEEK]  # the first week: an info
    warned = {a[:2] for found in seen.values() for a in found if a[1] == "warning"}
    assert warned == {("dept_total", "warning")}  # no store and no series of it warns
    assert not any(a[0] == "dept_total" for a in seen[14])  # closed once the department is back
    with storage.session() as session:
        (alert,) = [a for a in alerts.past_alerts(session) if a.kind == "dept_total"]
        assert (
            alert.message.startswith("department 3 across stores: $")
            and "third week running" in alert.message
        )
        assert (
            "against a 95% range of $" in alert.message
            and "4 of 4 stores below their forecast" in alert.message
        )
        assert alert.details["url"] == "/chain/departments/3" and alert.details["departments"] == [3]
        assert alert.details["direction"] == "below" and alert.resolved_at is not None


def test_a_department_shifted_for_one_week_is_not_a_warning(app, forecaster):
    storage = app.extensions["storage"]
    seen = _replay(
        storage, forecaster, lambda s, d, a: a * 0.7 if d == 3 else a, until=FAULT_WEEK, settings=ACROSS_FOUR
    )
    assert not any(a[1] == "warning" for found in seen.values() for a in found)


def _with_small_department(k: int, fault=None) -> dict[tuple[int, int], tuple[float, float]]:
    """The four stores at twice the size, and store 1 selling a small department 7 besides."""
    rng = np.random.default_rng(100 + k)
    out = {key: (2 * forecast, 2 * actual) for key, (forecast, actual) in _series(k).items()}
    actual = 4000.0 * (1 + rng.normal(0, 0.02))
    out[(1, 7)] = (4000.0, fault(1, 7, actual) if fault else actual)
    return out


def test_a_small_department_vanishing_for_weeks_is_not_a_warning(app, forecaster):
    """A department worth under a hundredth of its store's sales that nearly vanishes (an aisle
    refitted, a product line out of stock) is not worth waking anyone for."""
    storage = app.extensions["storage"]
    seen = _replay(
        storage, forecaster, lambda s, d, a: a * 0.01, until=FAULT_WEEK + 2, series=_with_small_department
    )
    assert not any(a[1] == "warning" for found in seen.values() for a in found), seen


def test_a_department_total_range_is_widened_to_its_own_year_on_year_spread(forecaster):
    spread = exceedance.own_spread(forecaster, forecaster.data_through, 3.5, "dept")
    assert spread and all(np.isfinite(v) and v >= 0 for v in spread.values())
    assert exceedance.own_spread(forecaster, dt.date(1999, 1, 1), 3.5, "dept") == {}  # no year before it
    week = dt.date(2012, 3, 2)
    frame = pd.DataFrame(
        [
            {"store": s, "dept": 3, "week": week, "lag": 1, "prediction": 1000.0, "actual": 700.0,
             "lower_80": 950.0, "upper_80": 1050.0, "lower_95": 900.0, "upper_95": 1100.0}
            for s in range(1, 6)
        ]
    )  # fmt: skip
    narrow = exceedance.department_totals(frame, forecaster)
    (wide,) = exceedance.department_totals(frame, forecaster, {3: 0.5}).itertuples()
    assert narrow["z"].iloc[0] < -Z95_TWICE  # the store-total range alone: far outside
    assert wide.lower_95 == pytest.approx(5000 * np.exp(-0.5)) and wide.upper_95 == pytest.approx(
        5000 * np.exp(0.5)
    )
    assert -1.96 < wide.z < 0  # the department's own spread: within its range


@pytest.mark.parametrize("size", [-0.2, 0.2, 0.3])
def test_a_fifth_off_at_an_erratic_store_is_an_info_the_first_week_and_a_warning_the_second(
    app, forecaster, size
):
    """The small model's synthetic store 2 strays a quarter or more from a year before in a tenth of
    weeks, which widens its range past a fifth; its forecasts still met its sales within a few hundredths
    every week, so a fifth off for two weeks running is a change of the store."""
    spread = exceedance.own_spread(forecaster, forecaster.data_through, 1.0, "store")
    assert spread[2] > 0.2
    storage = app.extensions["storage"]
    seen = _replay(
        storage,
        forecaster,
        lambda s, d, a: a * (1 + size) if s == 2 else a,
        until=12,
        settings=exceedance.ExceedanceSettings(),
    )
    assert seen[FAULT_WEEK] == [("digest", "info", 2, None, ())]
    assert _first(seen, lambda a: a[:3] == ("store_total", "warning", 2)) == 2
    warned = {a[:3] for found in seen.values() for a in found if a[1] == "warning"}
    assert warned == {("store_total", "warning", 2)}
    with storage.session() as session:
        (alert,) = [a for a in alerts.past_alerts(session) if a.kind == "store_total"]
        assert alert.details["shift"] == pytest.approx(size, abs=0.06)
        assert f"{abs(alert.details['shift']):.0%} beyond the other stores' and its own usual miss" in (
            alert.message
        )


def _store_weeks(ratios: dict[int, list[float]], lag: int = 1) -> pd.DataFrame:
    """Store totals of consecutive weeks at one lag, each store's actual its ratio times a plan of 1M."""
    start = dt.date(2012, 3, 2)
    return pd.DataFrame(
        [
            {"store": store, "week": start + dt.timedelta(weeks=k), "lag": lag, "prediction": 1e6,
             "actual": 1e6 * r}
            for store, weekly in ratios.items()
            for k, r in enumerate(weekly)
        ]
    )  # fmt: skip


def test_a_miss_every_store_shares_is_taken_out_of_each_stores_shift():
    totals = _store_weeks({s: [0.87] for s in range(1, 6)} | {6: [0.87 * 0.8]})
    shift = exceedance.store_shifts(totals, peers=5)
    assert shift[:5] == pytest.approx([0.0] * 5)
    assert shift[5] == pytest.approx(np.log(0.8))
    alone = exceedance.store_shifts(totals.head(4), peers=5)  # too few stores to tell a common miss
    assert alone == pytest.approx([np.log(0.87)] * 4)


def test_a_stores_usual_miss_is_its_median_over_the_weeks_before_once_there_are_enough():
    totals = _store_weeks({1: [0.9, 0.92, 0.88, 0.9, 0.7], 2: [1.0, 1.1, 1.0, 1.0, 1.0], 3: [1.0, 1.0]})
    totals["shift"] = np.log(totals["actual"] / totals["prediction"])
    usual = exceedance.usual_shift(totals, dt.date(2012, 3, 30), weeks=8, least=4)
    assert set(usual) == {1, 2}  # store 3: two weeks known, no usual miss assumed
    assert usual[1] == pytest.approx(np.log(0.9), abs=0.01) and usual[2] == pytest.approx(0.0)


def test_most_stores_above_their_range_is_a_file_fault_only_when_the_chain_is_far_off_its_plan():
    totals = _store_weeks({s: [1.1, 2.0] for s in range(1, 11)})
    totals["z"] = 3.0  # every store above its 95% range in both weeks
    found = exceedance.chain_weeks(totals, share=0.6, total_share=0.25)
    assert [f["week"] for f in found.values()] == ["2012-03-09"]  # the doubled week; not the holiday's 10%
    assert found[dt.date(2012, 3, 9)]["outside"] == 10
