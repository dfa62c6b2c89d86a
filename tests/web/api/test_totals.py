"""The chain's and a department's totals under /api/v1: answers, CSV, and refusals in words."""

from __future__ import annotations

import csv
import io

import pytest

from app.web.api.totals import TOTAL_CSV_COLUMNS
from app.web.schemas import ChainForecastResponse, DepartmentTotalResponse
from tests.helpers.answers import assert_error, assert_ordered


def _series_sum(client, forecaster, start: str, weeks: int, dept: int | None = None) -> list[float]:
    """The served series forecasts (cents) added up per week, over every store and department."""
    sums = [0.0] * weeks
    for store in forecaster.stores():
        for d in forecaster.departments(store):
            if dept is not None and d != dept:
                continue
            body = client.post(
                "/api/v1/forecast", json={"store": store, "dept": d, "date": start, "weeks": weeks}
            ).get_json()
            for j, p in enumerate(body["predictions"]):
                sums[j] += p["prediction"]
    return sums


def test_chain_total_is_the_sum_of_its_series_and_departments(client, forecaster, known):
    response = client.get(f"/api/v1/chain/forecast?date={known.week}&weeks=3")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = ChainForecastResponse.model_validate(response.get_json()).model_dump()
    assert body["weeks"] == 3 and str(body["start"]) == known.week
    series = _series_sum(client, forecaster, known.week, 3)
    for week, expected in zip(body["predictions"], series, strict=True):
        assert week["prediction"] == pytest.approx(expected, abs=0.005)  # to the cent
        assert week["level"] == "chain" and week["dept"] is None
        assert_ordered(week)
    assert body["total"] == pytest.approx(sum(w["prediction"] for w in body["predictions"]), abs=0.005)
    assert body["total"] == pytest.approx(sum(d["total"] for d in body["departments"]), abs=0.005)
    assert [d["rank"] for d in body["departments"]] == list(range(1, len(body["departments"]) + 1))
    assert {d["dept"] for d in body["departments"]} == set(forecaster.all_departments())


def test_department_total_is_the_sum_over_its_stores(client, forecaster, known):
    response = client.get(f"/api/v1/departments/{known.dept}/forecast?start={known.week}&weeks=2")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = DepartmentTotalResponse.model_validate(response.get_json()).model_dump()
    assert body["dept"] == known.dept
    series = _series_sum(client, forecaster, known.week, 2, dept=known.dept)
    for week, expected in zip(body["predictions"], series, strict=True):
        assert week["prediction"] == pytest.approx(expected, abs=0.005)
        assert_ordered(week)
    stores = {s["store"] for s in body["stores"]}
    assert stores == {s for s in forecaster.stores() if known.dept in forecaster.departments(s)}


def test_a_department_is_wider_relative_to_its_size_than_the_chain(client, known):
    """Totals are calibrated per level: the chain's band is narrower for its size than a department's."""
    chain = client.get(f"/api/v1/chain/forecast?date={known.week}&weeks=1").get_json()["predictions"][0]
    dept = client.get(f"/api/v1/departments/{known.dept}/forecast?weeks=1").get_json()["predictions"][0]
    for week in (chain, dept):
        assert week["upper_95"] - week["lower_95"] > week["upper_80"] - week["lower_80"] > 0


@pytest.mark.parametrize("how", ["suffix", "accept"])
def test_totals_as_csv(client, known, how):
    url = f"/api/v1/departments/{known.dept}/forecast"
    response = (
        client.get(f"{url}.csv?weeks=4")
        if how == "suffix"
        else client.get(f"{url}?weeks=4", headers={"Accept": "text/csv"})
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == TOTAL_CSV_COLUMNS and len(rows) == 4
    assert {r["level"] for r in rows} == {"department"} and {r["dept"] for r in rows} == {str(known.dept)}
    chain = client.get("/api/v1/chain/forecast.csv?weeks=2").get_data(as_text=True).splitlines()
    assert chain[0] == ",".join(TOTAL_CSV_COLUMNS) and chain[1].startswith("chain,,")


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("weeks=0", 422, "weeks"),
        ("weeks=53", 422, "weeks"),
        ("weeks=many", 422, "weeks"),
        ("date=not-a-date", 422, "date"),
        ("date=2001-01-05", 422, "date"),
        ("colour=red", 422, "colour"),
        ("date=2012-11-02&start=2012-11-09", 422, "body"),
    ],
)
def test_bad_queries_are_refused_naming_the_field(client, query, status, field):
    body = assert_error(client.get(f"/api/v1/chain/forecast?{query}"), status)
    fields = " ".join(d["field"] for d in body["details"])
    assert field in fields or field == "body", body


@pytest.mark.parametrize("dept", ["0", "1000", "abc", "true"])
def test_bad_department_numbers_are_refused(client, dept):
    assert_error(client.get(f"/api/v1/departments/{dept}/forecast"), 422, "dept")


def test_unknown_department_is_refused_in_words(client, forecaster):
    unknown = next(d for d in range(1, 100) if d not in forecaster.all_departments())
    body = assert_error(client.get(f"/api/v1/departments/{unknown}/forecast"), 422, "dept")
    assert f"unknown department {unknown}" in body["error"]


def test_no_model_is_503(app):
    client = app.test_client()
    assert_error(client.get("/api/v1/chain/forecast"), 503, "model")
    assert_error(client.get("/api/v1/departments/1/forecast.csv"), 503, "model")
