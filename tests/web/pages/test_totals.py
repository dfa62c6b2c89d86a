"""The chain and department pages: totals per week with their ranges, and the drill-down links."""

from __future__ import annotations

import re

from tests.helpers.answers import money


def test_chain_page_shows_the_total_and_links_each_department(client, forecaster, known):
    response = client.get(f"/chain?start={known.week}&weeks=4")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="total-result"' in html and 'data-testid="total-chart"' in html
    total = forecaster.forecast_total("chain", None, known.week, 4).total
    assert money(float(total["prediction"].sum())) in html
    assert money(float(total["lower_80"].iloc[0])) in html and money(float(total["upper_80"].iloc[0])) in html
    linked = re.findall(r'href="/chain/departments/(\d+)\?start=', html)
    assert sorted(map(int, linked)) == forecaster.all_departments()
    assert 'href="/chain" class="active" aria-current="page"' in html  # Plan group of the navigation
    assert "Download CSV" in html


def test_department_page_links_stores_and_series(client, forecaster, known):
    html = client.get(f"/chain/departments/{known.dept}?weeks=3").get_data(as_text=True)
    assert f"Department {known.dept} in every store" in html
    stores = [s for s in forecaster.stores() if known.dept in forecaster.departments(s)]
    for store in stores:
        assert f'href="/store?store={store}&amp;' in html
        assert f'href="/series/{store}/{known.dept}"' in html
    assert 'href="/chain?start=' in html  # back up to the chain


def test_bad_weeks_and_unknown_departments_are_told_in_words(client, forecaster, known):
    response = client.get("/chain?weeks=0")
    assert response.status_code == 422
    assert 'id="weeks-error"' in response.get_data(as_text=True)
    unknown = next(d for d in range(1, 100) if d not in forecaster.all_departments())
    response = client.get(f"/chain/departments/{unknown}")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and f"unknown department {unknown}" in html.lower()


def test_pages_without_a_model_say_so(app):
    for url in ("/chain", "/chain/departments/1"):
        response = app.test_client().get(url)
        assert response.status_code in (200, 503) and "model" in response.get_data(as_text=True).lower()


def test_one_week_is_said_in_the_singular_on_every_total_and_the_forecast(client, known):
    pages = (
        f"/chain?start={known.week}&weeks=1",
        f"/chain/departments/{known.dept}?start={known.week}&weeks=1",
        f"/store?store={known.store}&start={known.week}&weeks=1",
    )
    for url in pages:
        html = client.get(url).get_data(as_text=True)
        assert "1 weeks" not in html and "1 week from" in html and "1 week ahead" in html, url
    html = client.get(f"/chain?start={known.week}&weeks=4").get_data(as_text=True)
    assert "4 weeks from" in html and "1–4 weeks ahead" in html
