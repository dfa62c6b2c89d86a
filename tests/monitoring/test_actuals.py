"""Actual sales: validated like the loader (by line and column), idempotent upsert, API, page and CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.monitoring import actuals
from app.storage import ActualSale

CSV = (
    "Store,Dept,Date,Weekly_Sales,IsHoliday\n"
    "1,1,2012-11-02,24924.50,FALSE\n"
    "1,1,2012-11-23,46039.49,TRUE\n"
    "1,2,2012-11-02,-12.30,FALSE\n"
)


def _rows(app) -> list[tuple]:
    with app.extensions["storage"].session() as session:
        return [
            (r.store, r.dept, r.week, r.weekly_sales, r.is_holiday, r.ingested_at)
            for r in session.scalars(
                select(ActualSale).order_by(ActualSale.store, ActualSale.dept, ActualSale.week)
            )
        ]


def test_import_is_idempotent_and_updates_only_corrected_rows(mon_app):
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
    with storage.session() as session:
        fixed = actuals.import_csv(session, corrected)
    assert fixed.to_dict() == {"received": 3, "inserted": 0, "updated": 1, "unchanged": 2}
    assert _rows(mon_app)[2][3] == 12.30


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
    ],
)
def test_validation_names_line_and_column(text, line, column, fragment):
    with pytest.raises(actuals.ActualsError) as caught:
        actuals.parse_csv(text)
    error = caught.value.errors[0]
    assert (error["line"], error["field"]) == (line, column)
    assert fragment in error["message"]


def test_every_bad_column_is_reported_not_just_the_first():
    text = "Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,1,FALSE\nx,1,2012-11-09,y,FALSE\n"
    with pytest.raises(actuals.ActualsError) as caught:
        actuals.parse_csv(text)
    assert {(e["line"], e["field"]) for e in caught.value.errors} == {(3, "Store"), (3, "Weekly_Sales")}


def test_json_rows_default_the_holiday_flag_from_the_calendar():
    frame = actuals.parse_rows(
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
    response = client.post(
        "/api/v1/actuals", json=[{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.5}]
    )
    assert response.status_code == 200 and response.get_json()["inserted"] == 1
    response = client.post("/api/v1/actuals", data=CSV, content_type="text/csv")
    assert response.status_code == 200 and response.get_json() == {
        "received": 3,
        "inserted": 2,
        "updated": 1,
        "unchanged": 0,
    }
    response = client.post(
        "/api/v1/actuals", json={"rows": [{"store": 1, "dept": 1, "date": "2012-11-03", "weekly_sales": "x"}]}
    )
    body = response.get_json()
    assert response.status_code == 400 and set(body) == {"error", "details"}
    assert {d["field"] for d in body["details"]} == {"rows[0].date", "rows[0].weekly_sales"}
    response = client.post(
        "/api/v1/actuals",
        data="Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,oops,FALSE\n",
        content_type="text/csv",
    )
    detail = response.get_json()["details"][0]
    assert response.status_code == 400 and detail["field"] == "Weekly_Sales" and detail["line"] == 2
    assert detail["message"].startswith("line 2:")
    response = client.post("/api/v1/actuals", data="nonsense", content_type="application/octet-stream")
    assert response.status_code == 415


def test_api_needs_the_admin_token_when_one_is_configured(tmp_path):
    from tests.conftest import make_test_app

    app = make_test_app(tmp_path, STORECAST_ADMIN_TOKEN="s3cret")
    client = app.test_client()
    rows = [{"store": 1, "dept": 1, "date": "2012-11-02", "weekly_sales": 5.5}]
    assert client.post("/api/v1/actuals", json=rows).status_code == 401
    assert (
        client.post("/api/v1/actuals", json=rows, headers={"Authorization": "Bearer nope"}).status_code == 403
    )
    assert (
        client.post("/api/v1/actuals", json=rows, headers={"Authorization": "Bearer s3cret"}).status_code
        == 200
    )


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


def test_json_rows_are_checked_by_the_documented_model_in_one_pass(mon_app):
    client = mon_app.test_client()
    kaggle_names = [
        {"Store": "1", "Dept": 2, "Date": "2012-11-02", "Weekly_Sales": "10.5", "IsHoliday": "FALSE"}
    ]
    assert client.post("/api/v1/actuals", json=kaggle_names).get_json()["inserted"] == 1
    response = client.post(
        "/api/v1/actuals",
        json={"rows": [{"store": True, "dept": 1, "date": "2012-11-02"}, {"store": 1, "dept": 0, "date": 7}]},
    )
    body = response.get_json()
    assert response.status_code == 400 and body["error"].startswith("5 problem(s)")
    assert [(d["field"], d["message"]) for d in body["details"]] == [
        ("rows[0].store", "must be a number, not a boolean"),
        ("rows[0].weekly_sales", "Field required"),
        ("rows[1].dept", "Input should be greater than or equal to 1"),
        ("rows[1].date", "must be a date as YYYY-MM-DD"),
        ("rows[1].weekly_sales", "Field required"),
    ]
