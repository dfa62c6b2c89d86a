"""Fault specs: parsed with messages naming the part that is wrong, applied to a copy of the data only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from app.loop import faults


def test_a_spec_is_parsed_into_a_fault():
    fault = faults.parse_fault("store_level:store=20,size=-0.5,start=2012-05-04")
    assert (fault.kind, fault.store, fault.size, fault.start, fault.weeks) == (
        "store_level", 20, -0.5, dt.date(2012, 5, 4), None
    )  # fmt: skip
    covariate = faults.parse_fault("covariate:stores=3+4,column=cpi,mode=stuck,start=2012-05-04")
    assert covariate.affected_stores == (3, 4) and covariate.weeks == 4
    assert faults.parse_fault("dept_collapse:store=1,dept=4,start=2012-05-04").size == -0.9
    assert faults.parse_fault("spike:store=1,size=1,start=2012-05-04").weeks == 1


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("level:store=1,start=2012-05-04", "kind"),
        ("store_level:size=-0.5,start=2012-05-04", "store: required"),
        ("store_level:store=1,size=-0.5", "start: required"),
        ("store_level:store=1,size=-0.5,start=May", "start: 'May' is not a date"),
        ("store_level:store=x,size=-0.5,start=2012-05-04", "store: 'x' is not a whole number"),
        ("store_level:store=1,size=-2,start=2012-05-04", "size: -2.0 would make sales negative"),
        ("store_level:store=1,size=nan,start=2012-05-04", "size: 'nan' is not a number"),
        ("store_level:store=1,size=-0.5,start=2012-05-04,colour=red", "colour: not a setting"),
        ("store_level:store=1,store=2,size=-0.5,start=2012-05-04", "store: given twice"),
        ("store_level:store,size=-0.5,start=2012-05-04", "write key=value"),
        ("covariate:stores=1,column=rain,mode=offset,size=1,start=2012-05-04", "column: 'rain'"),
        ("covariate:stores=1,column=cpi,mode=wild,start=2012-05-04", "mode: 'wild'"),
        ("covariate:stores=1,column=cpi,mode=offset,start=2012-05-04", "size: required by an offset"),
    ],
)
def test_a_bad_spec_names_the_part_and_the_reason(spec, named):
    with pytest.raises(faults.FaultSpecError, match=named):
        faults.parse_fault(spec)


def test_faults_change_a_copy_of_exactly_the_rows_they_name(small_dataset):
    start = small_dataset.last_week - pd.Timedelta(weeks=4)
    before = small_dataset.sales.copy()
    injected = faults.parse_faults(
        [
            f"store_level:store=1,size=-0.5,start={start.date()}",
            f"dept_collapse:store=2,dept=4,start={start.date()}",
            f"spike:store=3,size=1,start={start.date()}",
            f"covariate:stores=1+2,column=temperature,mode=offset,size=-40,start={start.date()},weeks=2",
            f"covariate:stores=3,column=cpi,mode=stuck,start={start.date()}",
            f"actuals_missing:start={(start + pd.Timedelta(weeks=2)).date()}",
            f"actuals_doubled:start={(start + pd.Timedelta(weeks=3)).date()}",
        ]
    )
    faulted = faults.apply_faults(small_dataset, injected)
    pd.testing.assert_frame_equal(small_dataset.sales, before)  # the original is untouched

    def sales(data, store, dept, week):
        rows = data.sales[
            (data.sales["store"] == store) & (data.sales["dept"] == dept) & (data.sales["date"] == week)
        ]
        return rows["weekly_sales"].to_numpy()

    week1, week3 = start, start + pd.Timedelta(weeks=3)
    early = start - pd.Timedelta(weeks=1)
    assert sales(faulted, 1, 4, week1) == pytest.approx(0.5 * sales(small_dataset, 1, 4, week1))
    assert sales(faulted, 1, 4, early) == pytest.approx(sales(small_dataset, 1, 4, early))
    assert sales(faulted, 2, 4, week1) == pytest.approx(0.1 * sales(small_dataset, 2, 4, week1))
    assert sales(faulted, 2, 20, week1) == pytest.approx(sales(small_dataset, 2, 20, week1))
    spike_next = start + pd.Timedelta(weeks=1)
    assert sales(faulted, 3, 4, week1) == pytest.approx(2 * sales(small_dataset, 3, 4, week1))
    assert sales(faulted, 3, 4, spike_next) == pytest.approx(sales(small_dataset, 3, 4, spike_next))
    assert not (faulted.sales["date"] == start + pd.Timedelta(weeks=2)).any()
    assert sales(faulted, 5, 4, week3) == pytest.approx(2 * sales(small_dataset, 5, 4, week3))

    def covariate(data, store, column, week):
        rows = data.features[(data.features["store"] == store) & (data.features["date"] == week)]
        return float(rows[column].iloc[0])

    original = covariate(small_dataset, 1, "temperature", week1)
    assert covariate(faulted, 1, "temperature", week1) == pytest.approx(original - 40)
    later = start + pd.Timedelta(weeks=2)
    assert covariate(faulted, 1, "temperature", later) == covariate(small_dataset, 1, "temperature", later)
    stuck = [covariate(faulted, 3, "cpi", start + pd.Timedelta(weeks=k)) for k in range(4)]
    assert stuck == [covariate(small_dataset, 3, "cpi", early)] * 4
    assert np.isfinite(stuck).all()


def test_a_week_sent_again_carries_the_week_befores_sales(small_dataset):
    week = small_dataset.last_week - pd.Timedelta(weeks=2)
    faulted = faults.apply_faults(
        small_dataset, [faults.parse_fault(f"actuals_repeated:start={week.date()}")]
    )
    again = faulted.sales[faulted.sales["date"] == week].set_index(["store", "dept"])["weekly_sales"]
    sales = small_dataset.sales
    before = sales[sales["date"] == week - pd.Timedelta(weeks=1)].set_index(["store", "dept"])["weekly_sales"]
    pd.testing.assert_series_equal(again.sort_index(), before.sort_index())


def test_a_fault_on_a_store_or_department_the_data_lacks_is_named(small_dataset):
    assert faults.unknown_entity(faults.parse_fault("store_level:store=99,size=-0.5,start=2012-05-04"),
                                 small_dataset) == "store: the data has no store 99"  # fmt: skip
    problem = faults.unknown_entity(
        faults.parse_fault("dept_collapse:store=1,dept=3,start=2012-05-04"), small_dataset
    )
    assert problem == "dept: the data has no department 3 in store 1"


def test_an_alert_names_the_fault_by_its_store_department_column_or_week():
    level = faults.parse_fault("store_level:store=20,size=-0.5,start=2012-05-04")
    assert faults.names_entity(level, {"store": 20, "details": {}})
    assert not faults.names_entity(level, {"store": 21, "details": {}})
    collapse = faults.parse_fault("dept_collapse:store=2,dept=92,start=2012-05-04")
    assert faults.names_entity(collapse, {"store": 2, "details": {"departments": [5, 92]}})
    assert not faults.names_entity(collapse, {"store": 2, "details": {"departments": [5]}})
    feed = faults.parse_fault("covariate:stores=3+4,column=cpi,mode=stuck,start=2012-05-04")
    assert faults.names_entity(feed, {"store": None, "details": {"column": "cpi", "stores": [3, 4, 9]}})
    assert not faults.names_entity(feed, {"store": None, "details": {"column": "cpi", "stores": [3]}})
    missing = faults.parse_fault("actuals_missing:start=2012-05-04")
    assert faults.names_entity(
        missing, {"kind": "actuals_feed", "store": None, "details": {"week": "2012-05-04"}}
    )
    assert not faults.names_entity(
        missing, {"kind": "store_total", "store": 3, "details": {"week": "2012-05-04"}}
    )
