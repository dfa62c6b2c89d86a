"""The monitoring page's accuracy by level in Chromium at 1280 and 375 px: a published run scored against
a week of actual sales, each level's row with what it is scored on, readable without sideways scrolling
of the page; nothing above a minor axe-core finding; screenshots for a person to look at
(STORECAST_SHOTS)."""

from __future__ import annotations

import pytest

from app.loop import publish
from tests.helpers.admin import admin_headers
from tests.helpers.browser import AXE, IN_CHROMIUM, WIDTHS, axe_problems, serve, shot
from tests.helpers.published import score_next_week

pytestmark = IN_CHROMIUM
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
SIDEWAYS_JS = """() => { const wrap = document.querySelector('[data-testid=level-accuracy]');
  return wrap.scrollWidth - wrap.clientWidth; }"""
LEVELS_JS = """() => [...document.querySelectorAll('[data-testid=level-accuracy] tbody tr')]
  .map(tr => ({level: tr.dataset.level, text: tr.innerText}))"""


@pytest.fixture
def scored_app(model_app, forecaster):
    """The served model's run published, and the week after it sold 10% above each next-week forecast."""
    storage = model_app.extensions["storage"]
    score_next_week(storage, forecaster, publish.publish(storage, forecaster))
    return model_app


@pytest.mark.parametrize("width", WIDTHS)
def test_accuracy_by_level_reads_at_both_widths(scored_app, browser, width):
    with serve(scored_app) as url:
        page = browser.new_context(viewport={"width": width, "height": WIDTHS[width]}).new_page()
        page.goto(url + "/monitoring")
        table = page.wait_for_selector("[data-testid=level-accuracy] >> visible=true")
        levels = page.evaluate(LEVELS_JS)
        assert [row["level"] for row in levels] == ["series", "store", "department", "chain"]
        for row in levels:  # each level says, in words, what it is scored on, and its bias (-9.1%)
            assert "against" in row["text"] and "-9.1%" in row["text"], row
        assert page.evaluate(OVERFLOW_JS) <= 1  # a wide table scrolls in its own box, not the page
        assert table.bounding_box()["width"] <= width
        if width > 640:  # every column in view on a desktop, without scrolling the table sideways
            assert page.evaluate(SIDEWAYS_JS) <= 1
        if AXE.exists():
            assert axe_problems(page, ("moderate", "serious", "critical")) == []
        shot(page, f"monitoring-levels-{width}", "#lag-accuracy")
        page.context.close()


def test_a_wrong_admin_token_on_the_actuals_upload_is_said_in_the_page(model_app, browser, tmp_path):
    """The upload answers 403 with its panel: htmx swaps it in as it does a 422, never silently."""
    sales = tmp_path / "week.csv"
    sales.write_text("Store,Dept,Date,Weekly_Sales,IsHoliday\n1,1,2012-11-02,100,FALSE\n")
    admin_headers(model_app)  # the server has a token; the page is given another
    with serve(model_app) as url:
        page = browser.new_context(viewport={"width": 1280, "height": WIDTHS[1280]}).new_page()
        page.goto(url + "/monitoring")
        page.set_input_files("#actuals-file", str(sales))
        assert page.inner_text("#actuals-file-name") == "week.csv"
        page.fill("#actuals-token", "not-the-token")
        page.click("button[type=submit]:has-text('Import actuals')")
        page.wait_for_selector("#upload-result [role=alert]:has-text('admin token')")
        page.context.close()
