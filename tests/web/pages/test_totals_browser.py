"""The chain and department pages in Chromium at 1280 and 375 px: the drill-down from the chain to a
department, a store and a series; the week table's key columns without sideways scrolling on a phone;
nothing above a minor axe-core finding; screenshots for a person to look at (STORECAST_SHOTS)."""

from __future__ import annotations

import pytest

from tests.helpers.browser import (
    AXE,
    IN_CHROMIUM,
    KEY_COLUMNS,
    WIDTHS,
    axe_problems,
    chart_text_sizes,
    serve,
    shot,
)

pytestmark = IN_CHROMIUM
ALL_COLUMNS = ["WEEK", "AHEAD", "FORECAST", "80% LOW", "80% HIGH", "95% LOW", "95% HIGH"]

# The week table measured with the chain's widest figures (eight digits), not only the synthetic ones.
TABLE_JS = """selector => {
  const wrap = document.querySelector(selector);
  wrap.querySelectorAll('td.num .full').forEach(span => { span.textContent = '$99,999,999'; });
  wrap.querySelectorAll('td.num .short').forEach(span => { span.textContent = '$99.99M'; });
  const shown = [...wrap.querySelectorAll('thead th')].filter(th => th.getBoundingClientRect().width > 0);
  return {columns: shown.map(th => th.innerText.trim()), sideways: wrap.scrollWidth - wrap.clientWidth};
}"""
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
# The navigation (with its Chain entry) ends before the theme button: nothing drawn over another.
NAV_FITS_JS = """() => {
  const items = [...document.querySelectorAll('.nav a, .nav summary')].filter(e => e.checkVisibility());
  const right = Math.max(...items.map(e => e.getBoundingClientRect().right));
  return right <= document.querySelector('#theme-toggle').getBoundingClientRect().left;
}"""


@pytest.fixture
def live_server(model_app):
    with serve(model_app) as url:
        yield url


@pytest.mark.parametrize("width", WIDTHS)
def test_drill_down_from_the_chain_to_a_series(model_app, live_server, browser, width):
    page = browser.new_context(viewport={"width": width, "height": WIDTHS[width]}).new_page()
    page.goto(live_server + "/chain?weeks=13")
    page.wait_for_selector("[data-testid=total-chart] svg >> visible=true")
    assert page.evaluate(OVERFLOW_JS) <= 1
    assert page.evaluate(NAV_FITS_JS)
    table = page.evaluate(TABLE_JS, "[data-testid=week-table] .week-table")
    assert table["columns"] == (ALL_COLUMNS if width > 640 else KEY_COLUMNS), table
    assert table["sideways"] <= 1, table
    small = [(t, round(s, 1)) for t, s in chart_text_sizes(page, "[data-testid=total-result]") if s < 11]
    assert small == [], small
    ranked = chart_text_sizes(page, ".chart.compact")  # the ranking's bars, drawn near their own size
    assert ranked and all(11 <= size <= 15 for _, size in ranked), ranked
    page.reload()
    page.wait_for_selector("[data-testid=total-chart] svg >> visible=true")
    shot(page, f"chain-{width}")

    page.click("[data-testid=parts] a >> nth=0")
    page.wait_for_url("**/chain/departments/**")
    page.wait_for_selector("[data-testid=total-chart] svg >> visible=true")
    assert "in every store" in page.inner_text("h1")
    assert page.evaluate(OVERFLOW_JS) <= 1
    shot(page, f"department-{width}")
    dept = int(page.url.split("/chain/departments/")[1].split("?")[0])

    page.click("[data-testid=parts] a:has-text('Store') >> nth=0")
    page.wait_for_url("**/store?store=*")
    page.wait_for_selector("[data-testid=store-result]")
    page.go_back()
    page.click("[data-testid=parts] a:has-text('Published') >> nth=0")
    page.wait_for_url(f"**/series/*/{dept}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_above_minor_on_the_totals_pages(model_app, live_server, browser, width):
    if not AXE.exists():
        pytest.skip("static/vendor/axe.min.js missing: run scripts/setup_assets.sh")
    page = browser.new_context(viewport={"width": width, "height": WIDTHS[width]}).new_page()
    dept = model_app.extensions["model_holder"].get().all_departments()[0]
    problems = {}
    for path in ("/chain", f"/chain/departments/{dept}", "/chain?weeks=0"):
        page.goto(live_server + path)
        problems[path] = axe_problems(page, ("moderate", "serious", "critical"))
    assert {p: lines for p, lines in problems.items() if lines} == {}
    page.context.close()
