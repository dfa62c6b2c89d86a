"""Hostile requests get a small 4xx naming the problem, never a 500.

Time and memory are measured by benchmarks/bench_hostile.py against a real gunicorn; here the
status, the message and the response size are asserted.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from app.web.csv_io import neutralise_cell

SMALL = 100_000  # bytes: every error response stays under this
TOKEN = "hostile-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.fixture
def admin_client(model_app):
    """The small model's app with an admin token (every write needs one)."""
    model_app.config["STORECAST_ADMIN_TOKEN"] = TOKEN
    return model_app.test_client()


def csrf_token(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _refused(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert len(response.get_data()) < SMALL
    return response.get_json()


def test_a_batch_csv_with_millions_of_unknown_columns_is_refused_small(client):
    body = b"Store,Dept,Date" + b",x" * 4_900_000 + b"\n1,1,2012-11-02\n"
    assert len(body) > 9_000_000
    data = _refused(client.post("/api/v1/predict/batch", data=body, content_type="text/csv"), 400)
    assert data["details"] == [{"field": "header", "message": "the header line is longer than 16,384 bytes"}]


def test_a_batch_csv_with_many_unknown_columns_lists_some_and_counts_the_rest(client):
    body = ("Store,Dept,Date," + ",".join(f"x{i}" for i in range(60)) + "\n1,1,2012-11-02\n").encode()
    data = _refused(client.post("/api/v1/predict/batch", data=body, content_type="text/csv"), 400)
    assert len(data["details"]) == 51
    assert data["details"][-1]["message"] == "and 10 more problems not listed"


def test_the_batch_page_shows_the_wide_header_inline(client):
    body = b"Store,Dept,Date" + b",x" * 4_900_000 + b"\n1,1,2012-11-02\n"
    page = client.post(
        "/batch",
        data={"csrf_token": csrf_token(client, "/batch"), "file": (io.BytesIO(body), "wide.csv")},
        headers={"HX-Request": "true"},
    )
    assert page.status_code == 400
    assert len(page.get_data()) < SMALL
    assert "longer than 16,384 bytes" in page.get_data(as_text=True)


def test_an_actuals_csv_repeating_a_column_is_refused_before_pandas(admin_client):
    body = b"Store,Dept,Date,Weekly_Sales,IsHoliday" + b",Store" * 100_000 + b"\n1,1,2012-11-02,5,FALSE\n"
    data = _refused(
        admin_client.post("/api/v1/actuals", data=body, content_type="text/csv", headers=AUTH), 400
    )
    assert data["details"][0]["field"] == "header"
    short = b"Store,Dept,Date,Weekly_Sales,IsHoliday,Store,Dept\n1,1,2012-11-02,5,FALSE,1,1\n"
    data = _refused(
        admin_client.post("/api/v1/actuals", data=short, content_type="text/csv", headers=AUTH), 400
    )
    assert [(d["field"], d["message"]) for d in data["details"]] == [
        ("Store", "line 1: duplicate column (2 times)"),
        ("Dept", "line 1: duplicate column (2 times)"),
    ]


@pytest.mark.parametrize(
    "path", ["/api/v1/predict", "/api/v1/predict/batch", "/api/v1/forecast", "/api/v1/actuals"]
)
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(admin_client, path, body):
    data = _refused(admin_client.post(path, data=body, content_type="application/json", headers=AUTH), 400)
    assert data["details"][0]["message"].startswith("nested deeper than")


def test_deeply_nested_json_on_an_admin_route_is_a_400(admin_client):
    response = admin_client.post(
        "/api/v1/models/v1/promote",
        data=DEEP_OBJECT,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert _refused(response, 400)["error"] == "malformed JSON"


@pytest.mark.parametrize("path", ["/api/v1/predict", "/api/v1/actuals"])
def test_a_5000_digit_integer_is_refused_without_python_internals(admin_client, path, row):
    body = b'{"store": ' + b"9" * 5000 + b', "dept": 1, "date": "2012-11-02"}'
    data = _refused(admin_client.post(path, data=body, content_type="application/json", headers=AUTH), 400)
    text = json.dumps(data)
    assert "too large" in text and "sys." not in text and "set_int_max_str_digits" not in text


def test_a_5000_digit_number_as_text_is_named_and_cut(admin_client, row):
    data = _refused(admin_client.post("/api/v1/predict", json={**row, "store": "9" * 5000}), 422)
    assert data["details"][0]["field"] == "store"
    series = f"{row['store']},{row['dept']}".encode()  # a series the model knows: only the number is wrong
    csv_body = (
        b"Store,Dept,Date,Weekly_Sales,IsHoliday\n" + series + b",2012-11-02," + b"9" * 5000 + b",FALSE\n"
    )
    response = admin_client.post("/api/v1/actuals", data=csv_body, content_type="text/csv", headers=AUTH)
    data = _refused(response, 422)
    assert data["details"][0]["field"] == "Weekly_Sales"
    assert "(cut; 5,000 characters)" in data["details"][0]["message"]


def test_a_week_past_the_timestamp_range_is_refused_not_wrapped(admin_client, row):
    body = (
        f"Store,Dept,Date,Weekly_Sales,IsHoliday\n{row['store']},{row['dept']},9999-12-31,5,FALSE\n".encode()
    )
    data = _refused(
        admin_client.post("/api/v1/actuals", data=body, content_type="text/csv", headers=AUTH), 422
    )
    assert data["details"][0]["field"] == "Date"
    assert "outside" in data["details"][0]["message"]


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "@SUM(A1:A9)", "+1+1", "-2+3"]


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ("=1+1", "'=1+1"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("1e5", "1e5"),
        ("A-1", "A-1"),
        (12.5, 12.5),
    ],
)
def test_neutralise_cell(cell, exported):
    assert neutralise_cell(cell) == exported


def _exported_ids(text: str) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(text))]


def test_exported_csv_cells_from_user_input_cannot_run_as_formulas(client, known):
    lines = [
        f'"{f}",{known.store},{known.dept},{known.week},-1234.5'
        for f in (s.replace('"', '""') for s in FORMULAS)
    ]
    body = "Id,Store,Dept,Date,Weekly_Sales\n" + "\n".join(lines) + "\n"
    api = client.post("/api/v1/predict/batch?format=csv", data=body, content_type="text/csv")
    assert api.status_code == 200
    text = api.get_data(as_text=True)
    assert _exported_ids(text) == ["'" + f for f in FORMULAS]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["weekly_sales"] for r in rows} == {"-1234.5"}  # a negative number stays a number
    assert all(float(r["prediction"]) == float(r["prediction"]) for r in rows)

    page = client.post(
        "/batch",
        data={"csrf_token": csrf_token(client, "/batch"), "file": (io.BytesIO(body.encode()), "f.csv")},
    )
    link = re.search(r'href="(/batch/[0-9a-f]{32}\.csv)"', page.get_data(as_text=True)).group(1)
    assert _exported_ids(client.get(link).get_data(as_text=True)) == ["'" + f for f in FORMULAS]
