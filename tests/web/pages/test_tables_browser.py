"""Tables in Chromium: every column in view at 1280 px on the model pages, and the planner's tables of
words and ranges wrapped to fit a 375 px phone rather than hiding a column behind a sideways scroll."""

from __future__ import annotations

import pytest

from app.loop import publish
from tests.helpers.browser import IN_CHROMIUM, serve
from tests.helpers.published import score_next_week

pytestmark = IN_CHROMIUM
SIDEWAYS_JS = """() => [...document.querySelectorAll('.table-wrap, .reg-scroll, [role=region]')]
  .map(w => [w.getAttribute('aria-label') || w.className, w.scrollWidth - w.clientWidth])
  .filter(([, over]) => over > 1)"""


@pytest.fixture
def published_app(model_app, forecaster):
    storage = model_app.extensions["storage"]
    score_next_week(storage, forecaster, publish.publish(storage, forecaster))
    return model_app


def test_no_table_scrolls_sideways_on_the_model_pages_at_1280(published_app, browser):
    with serve(published_app) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        for path in ("/model", "/models/v1", "/models", "/runs", "/forecast-runs", "/chain"):
            page.goto(url + path)
            assert page.evaluate(SIDEWAYS_JS) == [], path
        page.context.close()


def test_the_planners_tables_fit_a_phone(published_app, browser, known):
    with serve(published_app) as url:
        page = browser.new_context(viewport={"width": 375, "height": 812}).new_page()
        for path in (f"/series/{known.store}/{known.dept}", f"/store?store={known.store}&weeks=4"):
            page.goto(url + path)
            assert page.evaluate(SIDEWAYS_JS) == [], path
        page.goto(url + "/")
        page.fill("#weeks", "13")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        page.fill("#markdown1", "50000")
        page.click("button[type=submit]:has-text('Forecast')")
        page.wait_for_selector("[data-testid=covariate-ranges]")
        assert page.evaluate(SIDEWAYS_JS) == []
        page.context.close()
