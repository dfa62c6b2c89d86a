"""The proper scores of the ranges in Chromium at 1280 and 375 px: the monitoring page's accuracy by lag
and the model card, each table whole on a desktop and scrolling inside its own box on a phone (the page
itself never sideways); screenshots for a person to look at (STORECAST_SHOTS)."""

from __future__ import annotations

import pytest

from app.loop import publish
from tests.helpers.browser import IN_CHROMIUM, WIDTHS, serve, shot
from tests.helpers.published import score_next_week

pytestmark = IN_CHROMIUM
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
SIDEWAYS_JS = "el => el.scrollWidth - el.clientWidth"


@pytest.fixture
def scored_server(model_app, forecaster):
    """The small model in production, a published run and the week after it scored."""
    storage = model_app.extensions["storage"]
    score_next_week(storage, forecaster, publish.publish(storage, forecaster))
    with serve(model_app) as url:
        yield url


@pytest.mark.parametrize("width", WIDTHS)
def test_range_scores_read_at_any_width(scored_server, browser, width):
    page = browser.new_context(viewport={"width": width, "height": WIDTHS[width]}).new_page()
    for path, selector, name in (
        ("/monitoring", "[data-testid=lag-scores]", "monitoring"),
        ("/model", "[data-testid=range-scores]", "model"),
    ):
        page.goto(scored_server + path)
        table = page.locator(selector)
        table.scroll_into_view_if_needed()
        assert table.is_visible()
        text = table.inner_text().lower()  # headings are drawn in capitals
        assert "interval score, 80% range" in text and "quantile loss, forecast (50%)" in text
        assert "$" in text and "%" in text
        assert page.evaluate(OVERFLOW_JS) <= 1, path
        if width > 640:
            assert table.evaluate(SIDEWAYS_JS) <= 1, path  # the whole table on a desktop
        shot(
            page,
            f"{name}-{width}-section",
            selector="[data-testid=lag-accuracy]"
            if name == "monitoring"
            else "[data-testid=model-card] section.card >> nth=0",
        )
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, f"{name}-{width}")
    page.context.close()
