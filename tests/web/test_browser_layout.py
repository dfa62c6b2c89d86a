"""Any screen: the forecast and store pages in Chromium at 1280 and 375 px, measured.

After a submit the answer is in view with the focus on it and said in the announcer; chart text is
drawn at 11 px or more; the forecast takes at least half of its chart on a desktop; the week table
shows every column on a desktop and the key ones on a phone, without sideways or inner scrolling;
the navigation takes one line.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import IN_CHROMIUM, KEY_COLUMNS, WIDTHS, chart_text_sizes, serve, wait_htmx

pytestmark = IN_CHROMIUM
STOCK_COLUMN = "STOCK TO (90%)"
ALL_COLUMNS = ["WEEK", "AHEAD", "FORECAST", "LAST YEAR", "80% LOW", "80% HIGH", "95% LOW", "95% HIGH"]

IN_VIEW_JS = """selector => {
  const box = document.querySelector(selector).getBoundingClientRect();
  const bar = document.querySelector('.topbar').getBoundingClientRect().bottom;
  return box.top >= bar - 1 && box.top < innerHeight / 2;
}"""

FORECAST_SHARE_JS = """() => {
  const svg = [...document.querySelectorAll('[data-testid=forecast-chart] svg')]
    .find(s => s.getBoundingClientRect().width);
  const areas = [...svg.querySelectorAll('.mark-area path')].map(p => p.getBoundingClientRect());
  const left = Math.min(...areas.map(r => r.left)), right = Math.max(...areas.map(r => r.right));
  return (right - left) / svg.getBoundingClientRect().width;
}"""

# The week table measured with the widest figures a department sells (six digits every cell), not
# only the small synthetic ones.
TABLE_JS = """selector => {
  const wrap = document.querySelector(selector);
  wrap.querySelectorAll('td.num').forEach(td => {
    const cell = td.querySelector('strong') || td;
    if (cell.textContent.startsWith('$')) cell.textContent = '$999,999';
  });
  const shown = [...wrap.querySelectorAll('thead th')].filter(th => th.getBoundingClientRect().width > 0);
  return {
    columns: shown.map(th => th.innerText.trim()),
    sideways: wrap.scrollWidth - wrap.clientWidth,
    inner: wrap.scrollHeight - wrap.clientHeight,
  };
}"""

NAV_JS = """() => {
  const bar = document.querySelector('.topbar').getBoundingClientRect();
  const boxes = [...document.querySelectorAll('.nav a, .nav summary')]
    .filter(e => e.checkVisibility()).map(e => e.getBoundingClientRect());
  // one line: every item starts above the bottom of every other
  const oneLine = Math.max(...boxes.map(r => r.top)) < Math.min(...boxes.map(r => r.bottom));
  return {height: bar.height, rows: oneLine ? 1 : 2};
}"""


@pytest.fixture
def live_server(model_app):
    with serve(model_app) as url:
        yield url


def _page(browser, width: int):
    return browser.new_context(viewport={"width": width, "height": WIDTHS[width]}).new_page()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_forecast_comes_into_view_and_reads_at_any_width(live_server, browser, width):
    page = _page(browser, width)
    page.goto(live_server + "/")
    wait_htmx(page)
    nav = page.evaluate(NAV_JS)
    assert nav["rows"] == 1 and nav["height"] < 64, nav
    if width == 1280:  # every destination in the one row, Plan then Operate
        shown = page.evaluate(
            "() => [...document.querySelectorAll('.nav a')].filter(a => a.checkVisibility())"
        )
        assert len(shown) == 9
    else:  # two menus; one opens below the bar
        assert (
            page.evaluate("() => [...document.querySelectorAll('.nav a')].some(a => a.checkVisibility())")
            is False
        )
        page.click(".nav summary:has-text('Operate')")
        assert page.locator(".nav a:has-text('Training runs')").is_visible()
        page.keyboard.press("Escape")
    page.fill("#weeks", "13")
    page.select_option("select[name=service_level]", "90")  # one more column: what to stock
    page.click("button[type=submit]:has-text('Forecast')")
    page.wait_for_selector("[data-testid=result-multi]")
    page.wait_for_function("() => document.getElementById('announcer').textContent.includes('13 weeks')")
    assert page.evaluate(IN_VIEW_JS, "[data-testid=result-multi]")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "result-multi"

    sizes = chart_text_sizes(page, "[data-testid=forecast-chart]") + chart_text_sizes(
        page, "[data-testid=why]"
    )
    assert len(sizes) >= 10
    small = [(text, round(size, 1)) for text, size in sizes if size < 11]
    assert small == [], small

    table = page.evaluate(TABLE_JS, "[data-testid=week-table] .table-wrap")
    assert table["sideways"] <= 1 and table["inner"] <= 1, table
    if width == 1280:
        assert table["columns"] == [*ALL_COLUMNS, STOCK_COLUMN]
        assert page.evaluate(FORECAST_SHARE_JS) >= 0.5
    else:
        assert table["columns"] == [*KEY_COLUMNS, STOCK_COLUMN]
        assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 1
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_store_forecast_comes_into_view_and_its_week_error_is_tied_to_its_field(
    live_server, browser, width
):
    page = _page(browser, width)
    page.goto(live_server + "/store")
    wait_htmx(page)
    page.fill("#start", "2030-01-04")
    page.click("button[type=submit]:has-text('Forecast the store')")
    error = page.wait_for_selector("#start-error")
    assert error.inner_text().startswith("Pick a week between ")
    start = page.locator("#start")
    assert start.get_attribute("aria-invalid") == "true"
    assert start.get_attribute("aria-describedby") == "start-error"
    assert page.evaluate("() => document.activeElement.id") == "start"

    page.fill("#start", "")
    page.click("button[type=submit]:has-text('Forecast the store')")
    page.wait_for_selector("[data-testid=store-result]")
    page.wait_for_function("() => document.getElementById('announcer').textContent.includes('in total')")
    assert page.evaluate(IN_VIEW_JS, "[data-testid=store-result]")
    sizes = chart_text_sizes(page, "[data-testid=store-result]") + chart_text_sizes(page, ".chart.compact")
    small = [(text, round(size, 1)) for text, size in sizes if size < 11]
    assert sizes and small == [], small
    ranked = chart_text_sizes(page, ".chart.compact")  # the ranking's bars, drawn near their own size
    assert ranked and all(size <= 15 for _, size in ranked), ranked
    page.context.close()


def test_one_menu_is_open_at_a_time_without_javascript(live_server, browser):
    """Plan and Operate are an exclusive pair (<details name>): opening one closes the other, so the
    Operate list never covers the open Plan list on a phone."""
    page = browser.new_context(viewport={"width": 375, "height": 812}, java_script_enabled=False).new_page()
    page.goto(live_server + "/store")
    page.click("summary:has-text('Plan')")
    page.click("summary:has-text('Operate')")
    opened = page.evaluate("() => [...document.querySelectorAll('details.nav-group')].map(d => d.open)")
    assert opened == [False, True]
    page.context.close()
