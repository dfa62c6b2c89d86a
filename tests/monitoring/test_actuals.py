"""Actual sales: one check for every path (by row and field, in one pass), idempotent upsert, explicit and
recorded corrections of stored weeks, API, page and CLI."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from sqlalchemy import event, insert, select

from app.forecasting import calendar
from app.monitoring import actuals, sales_check
from app.storage import ActualSale, ActualSaleCorrection
from tests.helpers.admin import ADMIN_HEADERS, admin_headers

CSV = (
    "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
    "1,1,2012-11-02,24924.50,FALSE\n"
    "1,1,2012-11-23,46039.49,TRUE\n"
    "1,2,2012-11-02,-12.30,FALSE\n"
)


@pytest.fixture
def served_bounds(model_app) -> sales_check.Bounds:
    """The bounds of the small synthetic model (stores 1-4, six departments, weeks from 2010-02-05)."""
    return sales_check.bounds_for(model_app.extensions["model_holder"].get(), dt.date(2030, 1, 2), 10.0)


def _rows(app) -> list[tuple]:
    with app.extensions["storage"].session() as session:
        return [
            (r.store, r.dept, r.week, r.weekly_sales, r.is_holiday, r.ingested_at)
            for r in session.scalars(
                select(ActualSale).order_by(ActualSale.store, ActualSale.dept, ActualSale.week)
            )
        ]


def _corrections(app) -> list[tuple]:
    with app.extensions["storage"].session() as session:
        return [
            (c.store, c.dept, c.week, c.old_weekly_sales, c.new_weekly_sales, c.corrected_by, c.reason)
            for c in session.scalars(select(ActualSaleCorrection).order_by(ActualSaleCorrection.id))
        ]


def test_import_is_idempotent_and_changes_stored_weeks_only_by_a_recorded_correction(mon_app):
    storage = mon_app.extensions["storage"]
    with storage.session() as session:
        first = actuals.import_csv(session, CSV)
    assert first.to_dict() == {"received": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    before = _rows(mon_app)
    assert before[1][2:5] == (dt.date(2012, 11, 23), 46039.49, True)
    with storage.session() as session:
        again = actuals.import_csv(session, CSV)
    assert again.to_dict() == {"received": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    assert _rows(mon_app) == before  # not even ingested_at moved
    corrected = CSV.replace("-12.30", "12.30")
    with pytest.raises(actuals.StoredWeekConflict) as caught, storage.session() as session:
        actuals.import_csv(session, corrected)
    assert caught.value.status == 422
    assert [(e["line"], e["field"]) for e in caught.value.errors] == [(4, "Weekly_Sales")]
    assert "stored as -12.30; 12.30 would change it" in caught.value.errors[0]["message"]
    assert _rows(mon_app) == before and _corrections(mon_app) == []
    with storage.session() as session:
        fixed = actuals.import_csv(
            session,
            corrected,
            correction=actuals.Correction(by="cli:ana", reason="sign typo in the POS export"),
        )
    assert fixed.to_dict() == {"received": 3, "inserted": 0, "updated": 1, "unchanged": 2}
    assert _rows(mon_app)[2][3] == 12.30
    assert _corrections(mon_app) == [
        (1, 2, dt.date(2012, 11, 2), -12.30, 12.30, "cli:ana", "sign typo in the POS export")
    ]


def test_every_problem_of_a_file_is_named_in_one_pass(served_bounds):
    store, dept = 1, served_bounds.departments[0]
    unknown_store = int(served_bounds.stores.max()) + 1
    unknown_dept = int(served_bounds.departments.max()) + 1
    first = served_bounds.first_week
    text = (
        "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
        f"{store},{dept},2012-11-02,100,FALSE\n"  # fine
        f"{unknown_store},{dept},2012-11-02,100,FALSE\n"  # 3: unknown store
        f"{store},{unknown_dept},2012-11-02,100,FALSE\n"  # 4: unknown department
        f"{store},{dept},{first - dt.timedelta(weeks=1)},100,FALSE\n"  # 5: before the data
        f"{store},{dept},2012-11-03,100,FALSE\n"  # 6: a Saturday
        f"{store},{dept},2012-11-09,99999999,FALSE\n"  # 7: implausible
        f"{store},{dept},2012-11-16,inf,FALSE\n"  # 8: not finite
        f"{store},{dept},2012-11-02,100,FALSE\n"  # 9: repeats line 2
        f"x,{dept},2012-11-23,y,maybe\n"  # 10: three bad cells
    )
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv(text, bounds=served_bounds)
    found = [(e["line"], e["field"]) for e in caught.value.errors]
    assert found == [
        (3, "Store"),
        (4, "Dept"),
        (5, "Date"),
        (6, "Date"),
        (7, "Weekly_Sales"),
        (8, "Weekly_Sales"),
        (9, "Store/Dept/Date"),
        (10, "Store"),
        (10, "Weekly_Sales"),
        (10, "IsHoliday"),
    ]
    messages = [e["message"] for e in caught.value.errors]
    assert f"store {unknown_store} is not in the data of production model" in messages[0]
    assert f"department {unknown_dept} is not in the data of production model" in messages[1]
    assert "the data's first week" in messages[2] and "Saturday" in messages[3]
    assert "times the series' largest week" in messages[4] and "not a finite number" in messages[5]
    assert "first on line 2" in messages[6]
    assert caught.value.status == 422  # read, then refused: malformed cells among them


def test_a_large_return_is_real_but_an_implausible_one_is_refused(served_bounds):
    dept = served_bounds.departments[0]
    peak = max(float(served_bounds.series_max.get((1, dept), 0.0)), served_bounds.typical_max)
    ok = f"Store,Dept,Date,Weekly_Sales,IsHoliday\n1,{dept},2012-11-02,{-peak:.2f},FALSE\n"
    assert sales_check.parse_csv(ok, bounds=served_bounds)["weekly_sales"].iat[0] == pytest.approx(-peak)
    huge = ok.replace(f"{-peak:.2f}", f"{-peak * 11:.2f}")
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv(huge, bounds=served_bounds)
    assert caught.value.status == 422 and caught.value.errors[0]["field"] == "Weekly_Sales"


def test_a_file_with_thousands_of_problems_lists_some_and_counts_the_rest(served_bounds):
    body = "".join(f"{100 + i},8,2012-11-02,5,FALSE\n" for i in range(3000))  # 3,000 unknown stores
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv("Store,Dept,Date,Weekly_Sales,IsHoliday\n" + body, bounds=served_bounds)
    errors = caught.value.errors
    assert len(errors) == sales_check.MAX_ERRORS + 1
    assert errors[-1] == {
        "field": "details",
        "line": None,
        "message": f"and {3000 - sales_check.MAX_ERRORS:,} more problems not listed",
        "count": 3000 - sales_check.MAX_ERRORS,
    }


@pytest.mark.parametrize(
    "text, line, column, fragment",
    [
        (
            "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,abc,FALSE\n",
            2,
            "Weekly_Sales",
            "not a number",
        ),
        (
            "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1,FALSE\n1,1,2012-11-03,1,FALSE\n",
            3,
            "Date",
            "Saturday",
        ),
        ("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1,maybe\n", 2, "IsHoliday", "TRUE or FALSE"),
        ("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1.5,2012-11-02,1,FALSE\n", 2, "Dept", "whole number"),
        (
            "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1,FALSE\n\n1,1,2012-11-02,2,FALSE\n",
            4,
            "Store/Dept/Date",
            "duplicate",
        ),
        ("Store,Dept,Weekly_Sales,IsHoliday\n1,1,1,FALSE\n", 1, "Date", "missing column"),
        ("Store,Dept,Date,Weekly_Sales,IsHoliday\n", 2, "", "no data rows"),  # as a batch says
    ],
)
def test_validation_names_line_and_column(text, line, column, fragment):
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv(text)
    error = caught.value.errors[0]
    assert (error["line"], error["field"]) == (line, column)
    assert fragment in error["message"]


@pytest.mark.parametrize("extra", ["9,", ""])
def test_rows_longer_than_the_header_are_refused_not_shifted_a_column(extra):
    """Every row one field longer: pandas would take the first column for an index and store each
    sale under the next column's store and department."""
    header = "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
    text = f"{header}{extra}1,3,2012-11-30,777,FALSE\n{extra}1,4,2012-11-30,8,FALSE\n"
    if not extra:
        text = text.replace("FALSE\n1,4", "FALSE,x\n1,4")  # one row longer: the line is named too
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv(text)
    error = caught.value.errors[0]
    assert "malformed CSV: Expected 5 fields in line" in error["message"]
    assert error["line"] == 2


def test_every_bad_column_is_reported_not_just_the_first():
    text = "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1,FALSE\nx,1,2012-11-09,y,FALSE\n"
    with pytest.raises(actuals.ActualsError) as caught:
        sales_check.parse_csv(text)
    assert {(e["line"], e["field"]) for e in caught.value.errors} == {(3, "Store"), (3, "Weekly_Sales")}


def test_a_csv_holiday_flag_left_empty_or_na_is_the_calendars_as_in_json_rows():
    rows = ["1,1,2012-11-23,5,NA", "1,1,2012-11-02,5,", "1,1,2012-11-09,5,TRUE"]
    text = "Store,Dept,Date,Weekly_Sales,IsHoliday\n" + "\n".join(rows) + "\n"
    frame = sales_check.parse_csv(text)
    assert frame["is_holiday"].tolist() == [True, False, True]  # Thanksgiving week; a plain one; as sent


def test_json_rows_default_the_holiday_flag_from_the_calendar():
    frame = sales_check.parse_rows(
        {
            "rows": [
                {"store": 1, "dept": 1, "week": "2012-11-23", "weekly_sales": 10},
                {"Store": 1, "Dept": 1, "Date": "2012-11-30", "Weekly_Sales": 5, "IsHoliday": True},
            ]
        }
    )
    assert frame["is_holiday"].tolist() == [
        True,
        True,
    ]  # Thanksgiving week from the calendar; the second as given


def test_api_accepts_json_and_csv_and_reports_errors_by_field(mon_app):
    client = mon_app.test_client()
    auth = admin_headers(mon_app)
    response = client.post(
        "/api/v1/actuals",
        json=[{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.5}],
        headers=auth,
    )
    assert response.status_code == 200 and response.get_json()["inserted"] == 1
    response = client.post("/api/v1/actuals", data=CSV, content_type="text/csv", headers=auth)
    body = response.get_json()
    assert response.status_code == 422 and "correct=true" in body["error"]  # 5.5 is stored for 1/1/11-02
    assert body["details"][0]["field"] == "Weekly_Sales" and body["details"][0]["line"] == 2
    fixed = CSV.replace("24924.50", "5.5")
    response = client.post("/api/v1/actuals", data=fixed, content_type="text/csv", headers=auth)
    assert response.status_code == 200 and response.get_json() == {
        "received": 3,
        "inserted": 2,
        "updated": 0,
        "unchanged": 1,
    }
    response = client.post(
        "/api/v1/actuals",
        json={"rows": [{"store": 1, "dept": 1, "date": "2012-11-03", "weekly_sales": "x"}]},
        headers=auth,
    )
    body = response.get_json()
    assert response.status_code == 422 and set(body) == {"error", "details"}
    assert {d["field"] for d in body["details"]} == {"rows[0].date", "rows[0].weekly_sales"}
    response = client.post(
        "/api/v1/actuals",
        data="Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,oops,FALSE\n",
        content_type="text/csv",
        headers=auth,
    )
    detail = response.get_json()["details"][0]
    assert response.status_code == 422 and detail["field"] == "Weekly_Sales" and detail["line"] == 2
    assert detail["message"].startswith("line 2:")
    response = client.post(
        "/api/v1/actuals", data="nonsense", content_type="application/octet-stream", headers=auth
    )
    assert response.status_code == 415


def test_api_refuses_unknown_stores_implausible_sales_and_silent_overwrites(model_app):
    client = model_app.test_client()
    auth = admin_headers(model_app)
    good = {"store": 1, "dept": 8, "date": "2012-11-02", "weekly_sales": 1000.0}
    assert client.post("/api/v1/actuals", json=[good], headers=auth).get_json()["inserted"] == 1
    rows = [
        {**good, "store": 98},
        {**good, "date": "2012-11-09", "weekly_sales": 99_999_999},
        {**good, "weekly_sales": -5},
    ]
    response = client.post("/api/v1/actuals", json={"rows": rows}, headers=auth)
    body = response.get_json()
    assert response.status_code == 422 and set(body) == {"error", "details"}
    assert [d["field"] for d in body["details"]] == ["rows[0].store", "rows[1].weekly_sales"]
    assert "store 98 is not in the data of production model" in body["details"][0]["message"]
    only_overwrite = client.post("/api/v1/actuals", json={"rows": rows[2:]}, headers=auth)
    body = only_overwrite.get_json()
    assert only_overwrite.status_code == 422
    assert body["details"][0]["field"] == "rows[0].weekly_sales"
    assert "stored as 1,000.00; -5.00 would change it" in body["details"][0]["message"]
    csv = "Store,Dept,Date,Weekly_Sales,IsHoliday\n98,8,2012-11-02,10,FALSE\n1,8,2012-11-02,-5,FALSE\n"
    response = client.post("/api/v1/actuals", data=csv, content_type="text/csv", headers=auth)
    details = response.get_json()["details"]
    assert response.status_code == 422 and [(d["field"], d["line"]) for d in details] == [("Store", 2)]
    assert _rows(model_app)[0][3] == 1000.0  # nothing changed
    resent = client.post("/api/v1/actuals", json=[good], headers=auth)
    assert resent.status_code == 200 and resent.get_json()["unchanged"] == 1  # the same value: idempotent


def test_a_correction_through_the_api_is_explicit_and_recorded(model_app):
    client = model_app.test_client()
    auth = admin_headers(model_app)
    row = {"store": 1, "dept": 8, "date": "2012-11-02", "weekly_sales": 1000.0}
    assert client.post("/api/v1/actuals", json=[row], headers=auth).status_code == 200
    no_reason = client.post("/api/v1/actuals?correct=true", json=[{**row, "weekly_sales": -5}], headers=auth)
    assert no_reason.status_code == 422 and no_reason.get_json()["details"][0]["field"] == "reason"
    corrected = client.post(
        "/api/v1/actuals?correct=true&reason=refund+booked+twice&by=ana",
        json=[{**row, "weekly_sales": -5}],
        headers=auth,
    )
    assert corrected.status_code == 200 and corrected.get_json()["updated"] == 1
    assert _rows(model_app)[0][3] == -5.0
    assert _corrections(model_app) == [
        (1, 8, dt.date(2012, 11, 2), 1000.0, -5.0, "admin-token (ana)", "refund booked twice")
    ]
    csv = "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,8,2012-11-02,1200,FALSE\n"
    response = client.post(
        "/api/v1/actuals?correct=1&reason=store+recount", data=csv, content_type="text/csv", headers=auth
    )
    assert response.status_code == 200 and _corrections(model_app)[-1][3:5] == (-5.0, 1200.0)


def test_a_week_of_the_models_own_data_changes_only_by_a_recorded_correction(model_app):
    """The sales the served model was trained on are stored too: another value for one of their weeks
    would move every forecast of the series without a word."""
    client = model_app.test_client()
    auth = admin_headers(model_app)
    panel = model_app.extensions["model_holder"].get().panel
    week = panel.last_week - 3
    held = panel.values[0, week - panel.first_week]
    row = {
        "store": int(panel.store[0]),
        "dept": int(panel.dept[0]),
        "date": calendar.week_date(week)[0].date().isoformat(),
        "weekly_sales": round(float(held), 2),
    }
    same = client.post("/api/v1/actuals", json=[row], headers=auth)
    assert same.status_code == 200 and same.get_json()["inserted"] == 1  # the data's own value: fine
    other = {**row, "date": calendar.week_date(week - 1)[0].date().isoformat(), "weekly_sales": 1.0}
    refused = client.post("/api/v1/actuals", json=[other], headers=auth)
    detail = refused.get_json()["details"][0]
    assert refused.status_code == 422 and detail["field"] == "rows[0].weekly_sales"
    assert (
        "is in the served model's data as" in detail["message"]
        and "1.00 would change it" in detail["message"]
    )
    assert len(_rows(model_app)) == 1  # nothing written
    corrected = client.post(
        "/api/v1/actuals?correct=true&reason=till+recount&by=ana", json=[other], headers=auth
    )
    assert corrected.status_code == 200 and corrected.get_json()["inserted"] == 1
    assert _corrections(model_app)[-1][4] == 1.0


def test_writes_need_the_admin_token_and_none_are_open_without_one(tmp_path):
    from tests.helpers.app import make_test_app

    rows = [{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.5}]
    unset = make_test_app(tmp_path / "unset").test_client()
    refused = unset.post("/api/v1/actuals", json=rows)
    assert refused.status_code == 401 and refused.get_json()["details"][0]["field"] == "Authorization"
    disabled = unset.post("/api/v1/actuals", json=rows, headers=ADMIN_HEADERS)
    assert disabled.status_code == 403 and "STORECAST_ADMIN_TOKEN is not set" in disabled.get_json()["error"]
    app = make_test_app(tmp_path / "set", STORECAST_ADMIN_TOKEN="s3cret")
    client = app.test_client()
    assert client.post("/api/v1/actuals", json=rows).status_code == 401
    assert (
        client.post("/api/v1/actuals", json=rows, headers={"Authorization": "Bearer nope"}).status_code == 403
    )
    assert (
        client.post("/api/v1/actuals", json=rows, headers={"Authorization": "Bearer s3cret"}).status_code
        == 200
    )
    assert _rows(app)[0][:4] == (1, 1, dt.date(2012, 11, 2), 5.5)


def test_cli_imports_a_file_and_reports_errors(mon_app, tmp_path):
    path = tmp_path / "actuals.csv"
    path.write_text(CSV)
    runner = mon_app.test_cli_runner()
    result = runner.invoke(args=["actuals", "import", str(path)])
    assert result.exit_code == 0 and "3 inserted" in result.output
    result = runner.invoke(args=["actuals", "import", str(path)])
    assert result.exit_code == 0 and "0 inserted, 0 updated, 3 unchanged" in result.output
    path.write_text("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,abc,FALSE\n")
    result = runner.invoke(args=["actuals", "import", str(path)])
    assert result.exit_code == 1 and "actuals.csv, line 2, column Weekly_Sales: not a number" in result.output


def test_cli_refuses_unknown_stores_and_names_every_problem_at_once(model_app, tmp_path):
    path = tmp_path / "week.csv"
    path.write_text(
        "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
        "99,8,2012-11-02,100,FALSE\n"
        "1,8,2012-11-02,99999999,FALSE\n"
        "1,8,2012-11-03,100,FALSE\n"
        "1,8,2012-11-09,100,FALSE\n"
        "1,8,2012-11-09,100,FALSE\n"
    )
    result = model_app.test_cli_runner().invoke(args=["actuals", "import", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("week.csv, line")]
    assert [line.split(":")[0] for line in lines] == [
        "week.csv, line 2, column Store",
        "week.csv, line 3, column Weekly_Sales",
        "week.csv, line 4, column Date",
        "week.csv, line 6, column Store/Dept/Date",
    ]
    assert "store 99 is not in the data of production model" in lines[0]
    assert "nothing was imported" in result.output
    assert _rows(model_app) == []


def test_cli_corrects_stored_weeks_only_when_told_and_records_who(model_app, tmp_path):
    runner = model_app.test_cli_runner()
    path = tmp_path / "week.csv"
    path.write_text("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,8,2012-11-02,100,FALSE\n")
    assert runner.invoke(args=["actuals", "import", str(path)]).exit_code == 0
    path.write_text("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,8,2012-11-02,-5,FALSE\n")
    refused = runner.invoke(args=["actuals", "import", str(path)])
    assert refused.exit_code == 1 and "stored as 100.00; -5.00 would change it" in refused.output
    assert "--correct --by NAME --reason TEXT" in refused.output
    no_actor = runner.invoke(args=["actuals", "import", str(path), "--correct", "--reason", "refund"])
    assert no_actor.exit_code != 0 and "--by" in no_actor.output
    done = runner.invoke(
        args=["actuals", "import", str(path), "--correct", "--by", "ana", "--reason", "refund"]
    )
    assert done.exit_code == 0, done.output
    assert "1 updated" in done.output and "1 stored week(s) corrected" in done.output
    assert _corrections(model_app) == [(1, 8, dt.date(2012, 11, 2), 100.0, -5.0, "cli (ana)", "refund")]
    listed = runner.invoke(args=["actuals", "corrections"])
    assert "store 1 dept 8 week 2012-11-02: 100.00 -> -5.00; by cli (ana): refund" in listed.output


def test_json_rows_are_checked_by_the_documented_model_in_one_pass(mon_app):
    client = mon_app.test_client()
    auth = admin_headers(mon_app)
    kaggle_names = [
        {"Store": "1", "Dept": 2, "Date": "2012-11-02", "Weekly_Sales": "10.5", "IsHoliday": "FALSE"}
    ]
    assert client.post("/api/v1/actuals", json=kaggle_names, headers=auth).get_json()["inserted"] == 1
    response = client.post(
        "/api/v1/actuals",
        json={
            "rows": [
                {"store": True, "dept": 1, "date": "2012-11-02"},
                {"store": 1, "dept": 0, "date": 7},
                {"store": 1, "dept": 3, "date": "2199-12-27", "weekly_sales": 1},
                {"store": 1, "dept": 2, "date": "2012-11-02", "weekly_sales": 10.5},
                {"store": 1, "dept": 2, "date": "2012-11-02", "weekly_sales": 10.5},
            ]
        },
        headers=auth,
    )
    body = response.get_json()
    assert response.status_code == 422 and body["error"].startswith("7 problem(s)")
    assert [(d["field"], d["message"]) for d in body["details"]] == [
        ("rows[0].store", "must be a number, not a boolean"),
        ("rows[0].weekly_sales", "Field required"),
        ("rows[1].dept", "Input should be greater than or equal to 1"),
        ("rows[1].date", "must be a date as YYYY-MM-DD"),
        ("rows[1].weekly_sales", "Field required"),
        ("rows[2].date", body["details"][5]["message"]),
        ("rows[4].store/dept/date", "duplicate row for Store 1, Dept 2, Date 2012-11-02 (first as rows[3])"),
    ]
    assert "the current week" in body["details"][5]["message"]


@contextlib.contextmanager
def _stored_concurrently_before_our_insert(storage, value: float):
    """Another import stores 1/2/2012-11-02 (as `value`) after this one read the table, before it inserts."""
    pending = [value]

    def other_import(conn, cursor, statement, *args) -> None:
        if pending and statement.lstrip().upper().startswith("INSERT INTO ACTUAL_SALES"):
            row = {"store": 1, "dept": 2, "week": dt.date(2012, 11, 2), "weekly_sales": pending.pop()}
            with storage.engine.begin() as other:
                other.execute(insert(ActualSale.__table__), [{**row, "is_holiday": False}])

    event.listen(storage.engine, "before_cursor_execute", other_import)
    try:
        yield
    finally:
        event.remove(storage.engine, "before_cursor_execute", other_import)


def test_a_week_stored_by_a_concurrent_import_is_compared_not_overwritten(mon_app):
    storage = mon_app.extensions["storage"]
    with (
        _stored_concurrently_before_our_insert(storage, 777.0),
        pytest.raises(actuals.StoredWeekConflict) as caught,
        storage.session() as session,
    ):
        actuals.import_csv(session, CSV)
    assert caught.value.errors[0]["line"] == 4 and "stored as 777.00" in caught.value.errors[0]["message"]
    assert [r[:4] for r in _rows(mon_app)] == [(1, 2, dt.date(2012, 11, 2), 777.0)]  # ours rolled back
    with storage.session() as session:
        session.execute(ActualSale.__table__.delete())
    with _stored_concurrently_before_our_insert(storage, -12.30), storage.session() as session:
        result = actuals.import_csv(session, CSV)  # the same value: nothing to refuse
    assert result.to_dict() == {"received": 3, "inserted": 2, "updated": 0, "unchanged": 1}
