"""Browser tests for the rough edges a page can show (real headless chromium).

Promotion confirmation and disabled admin forms, chart order and plain feature names, integers and code
in pages, screen-reader titles, keyboard-reachable tables, contrast in both themes, charts at 375 px.
"""

from __future__ import annotations

import re

import pytest

from app.registry import versions
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import make_test_app
from tests.helpers.browser import AXE, IN_CHROMIUM, axe_problems, chart_text_sizes, serve

pytestmark = IN_CHROMIUM


def _register(app, artifact, wmae: float, label: str) -> None:
    path = artifact.path.with_name(f"{label}{artifact.path.suffix}")
    path.write_bytes(artifact.path.read_bytes())
    versions.register_version(
        app.extensions["storage"],
        app.config["MODEL_NAME"],
        artifact_path=path,
        artifact_sha256=artifact.sha256,
        model_kind="hgb",
        metrics={"wmae": wmae, "origin": "2012-01-27", "horizon": 39, "rows": 1000, "baseline_wmae": 2000.0},
        by="tests",
    )


@pytest.fixture
def registry_server(tmp_path, small_artifact):
    """An admin server whose staging v2 backtests 7.3% worse than production v1."""
    app = make_test_app(tmp_path, STORECAST_ADMIN_TOKEN=ADMIN_TOKEN)
    _register(app, small_artifact, 1502.0, "v1")
    _register(app, small_artifact, 1612.0, "v2")
    with serve(app) as url:
        yield url


def test_a_worse_promotion_asks_for_confirmation(registry_server, local_page):
    page = local_page
    page.goto(registry_server + "/models")
    assert page.locator("[data-testid=admin-off]").count() == 0
    assert not page.locator("input[name=token]").is_disabled()
    page.click("a[href*='version=2'][href*='action=promote']")
    warning = page.wait_for_selector("[data-testid=promote-warning]")
    assert (
        "v2 is 7.3% worse than production v1 on the same weeks 2012-02-03..2012-10-26" in warning.inner_text()
    )
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[value=promote]")  # not confirmed: asked again, nothing changes
    page.wait_for_selector("[data-testid=promote-warning]")
    assert "v1" in page.inner_text(".reg-sub strong")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.check("[data-testid=promote-force]")
    page.click("button[value=promote]")
    page.wait_for_selector("text=v2 promoted to production")
    assert page.locator("[data-testid=promote-warning]").count() == 0


def test_admin_form_is_disabled_with_a_reason_when_admin_is_off(model_app, local_page):
    with serve(model_app) as url:  # no STORECAST_ADMIN_TOKEN
        page = local_page
        page.goto(url + "/models")
        note = page.locator("[data-testid=admin-off]")
        assert "STORECAST_ADMIN_TOKEN" in note.inner_text()
        fieldset = page.locator("fieldset.admin-fields")
        assert fieldset.get_attribute("aria-describedby") == "admin-off"
        for control in ("select[name=version]", "input[name=token]", "button[value=promote]"):
            assert page.locator(control).is_disabled(), control


BUCKETS = {"1-4": 1171.0, "14-26": 1232.0, "27-39": 1215.0, "5-13": 1193.0}  # as stored: sorted as text
THEMES = ("light", "dark")


@pytest.fixture
def rich_server(model_app):
    """The small model in production, a backtest run by horizon bucket, and a published forecast run."""
    from app.loop import publish
    from app.registry import training_runs

    storage = model_app.extensions["storage"]
    by_bucket = {bucket: {"wmae": wmae, "mae": wmae * 0.9} for bucket, wmae in BUCKETS.items()}
    with training_runs.track_run(storage, "backtest", "hgb", params={"folds": 3}) as run:
        run.log_metrics({"wmae": 1207.6, "rows": 123906.0, "horizon": 39.0, "by_bucket": by_bucket})
    publish.publish(storage, model_app.extensions["model_holder"].get())
    with serve(model_app) as url:
        yield url, run.id


def _set_theme(page, name: str) -> None:
    page.evaluate("name => document.documentElement.setAttribute('data-theme', name)", name)


CONTRAST_JS = """el => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const over = (top, under) => {  // alpha-blend a background onto what is under it
    const a = top.length > 3 ? top[3] : 1;
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a));
  };
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    layers.push(rgb(getComputedStyle(node).backgroundColor));
  }
  let bg = [255, 255, 255];
  for (const layer of layers.reverse()) bg = over(layer, bg);
  const fg = over(rgb(getComputedStyle(el).color), bg);
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}"""


def test_contrast_of_navigation_badges_and_stages_in_both_themes(rich_server, local_page):
    url, _ = rich_server
    page = local_page
    checked = {}
    for path, selectors in (
        ("/models", (".nav a.active", ".stage-production", ".reg-sub")),
        ("/model", (".nav a.active", ".badge.accent", "th")),
        ("/api/docs", (".method.post", ".method.get", ".badge.danger", ".badge.ok", ".badge.warn")),
    ):
        page.goto(url + path)
        for name in THEMES:
            _set_theme(page, name)
            for selector in selectors:
                ratio = page.locator(selector).first.evaluate(CONTRAST_JS)
                checked[(path, name, selector)] = round(ratio, 2)
    low = {key: ratio for key, ratio in checked.items() if ratio < 4.5}
    assert low == {}, low


def test_runs_chart_and_run_detail(rich_server, local_page):
    url, run_id = rich_server
    page = local_page
    page.goto(url + f"/runs?run={run_id}")
    chart = page.locator(".chart svg >> visible=true")
    labels = chart.locator("text").all_text_contents()
    buckets = [label for label in labels if label in BUCKETS]
    assert buckets == ["1-4", "5-13", "14-26", "27-39"], labels  # by horizon, not as text
    assert "weeks ahead" in chart.get_attribute("aria-label")

    page.goto(url + f"/runs/{run_id}")
    facts = page.inner_text("dl.facts")
    assert "123,906" in facts and "123,906.0" not in facts
    assert re.search(r"Weeks ahead scored\s+39\n", facts) and "39.0" not in facts
    rows = page.locator("table tbody tr td:first-child").all_inner_texts()
    assert rows == ["1-4", "5-13", "14-26", "27-39"]


def test_importance_chart_has_plain_names_distinct_ticks_and_nothing_cut(model_app, rich_server, browser):
    from app.forecasting.features import FEATURE_LABELS

    url, _ = rich_server
    for width in (1280, 375):
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        page.goto(url + "/model")
        svg = page.locator("figure.compact svg >> visible=true")
        texts = svg.locator("text").all_text_contents()
        names = [t for t in texts if t in FEATURE_LABELS.values()]
        assert len(names) >= 5, texts
        assert not any(t in FEATURE_LABELS and t not in FEATURE_LABELS.values() for t in texts)  # no lag52
        ticks = [t for t in texts if re.fullmatch(r"[\d.,]+", t)]
        assert len(ticks) >= 3 and len(ticks) == len(set(ticks)), ticks
        assert page.evaluate(OUTSIDE_JS, "figure.compact svg") == []
        features = page.inner_text("[data-testid=model-card] table >> nth=-1")
        assert "Sales 52 weeks earlier" in features and "lag52" in features  # plain name, code name beside
        page.context.close()


OUTSIDE_JS = """selector => {
  const out = [];
  for (const svg of document.querySelectorAll(selector)) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll('text')) {
      const r = text.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) out.push(text.textContent);
    }
  }
  return out;
}"""

CLIPPED_JS = """() => [...document.querySelectorAll('svg[role=img]')].flatMap(svg => {
  const box = svg.getBoundingClientRect();
  const frame = svg.parentElement.getBoundingClientRect();
  const problems = [];
  if (box.right > frame.right + 1 || box.left < frame.left - 1) problems.push('wider than its container');
  if (box.right > window.innerWidth + 1) problems.push('past the window');
  if (svg.parentElement.scrollWidth > svg.parentElement.clientWidth + 1) problems.push('scrolls');
  return problems.map(p => `${svg.getAttribute('aria-label')}: ${p}`);
})"""


def test_charts_are_named_legible_and_fit_a_phone(model_app, rich_server, browser):
    url, run_id = rich_server
    series = _every_page(model_app, run_id)[5]
    paths = ("/model", f"/runs?run={run_id}", "/store?store=1", "/forecast-runs", series, "/monitoring")
    for width in (1280, 375):
        page = browser.new_context(viewport={"width": width, "height": 812}).new_page()
        for path in paths:
            page.goto(url + path)
            svgs = page.locator("svg[role=img]")
            assert svgs.count() >= 1 or path in ("/forecast-runs", "/monitoring"), path  # nothing to draw yet
            for i in range(svgs.count()):
                svg = svgs.nth(i)
                label = svg.get_attribute("aria-label")
                assert label and len(label) > 10, (path, label)
                assert svg.locator("title").first.text_content() == label
            assert page.evaluate(CLIPPED_JS) == [], (path, width)
            assert page.evaluate(OUTSIDE_JS, "svg[role=img]") == [], (path, width)
            small = [(text, round(size, 1)) for text, size in chart_text_sizes(page, "main") if size < 11]
            assert small == [], (path, width, small)  # every chart's text drawn at 11 px or more
        page.context.close()


SCROLLERS_JS = """() => [...document.querySelectorAll('main *')].filter(el => {
  const style = getComputedStyle(el);
  return ['auto', 'scroll'].includes(style.overflowX) || ['auto', 'scroll'].includes(style.overflowY);
}).filter(el => el.tagName !== 'PRE' && !el.closest('nav'))
  .map(el => ({cls: el.className, tabindex: el.getAttribute('tabindex'), role: el.getAttribute('role'),
               label: el.getAttribute('aria-label')}))"""


def test_scrolling_tables_are_regions_reachable_by_keyboard(rich_server, browser):
    url, run_id = rich_server
    page = browser.new_context(viewport={"width": 375, "height": 812}).new_page()
    paths = ("/models", "/runs", f"/runs/{run_id}", "/model", "/api/docs", "/forecast-runs", "/monitoring")
    for path in paths:
        page.goto(url + path)
        for scroller in page.evaluate(SCROLLERS_JS):
            assert scroller["tabindex"] == "0" and scroller["role"] == "region" and scroller["label"], (
                path,
                scroller,
            )
    page.goto(url + "/runs")
    region = page.locator("[role=region][aria-label='Runs table']")
    for _ in range(40):  # Tab through the page until the table's region has the focus
        page.keyboard.press("Tab")
        if region.evaluate("el => el === document.activeElement"):
            break
    assert region.evaluate("el => el === document.activeElement")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("el => el.scrollLeft > 0", arg=region.element_handle())
    page.context.close()


def test_api_docs_show_code_not_backticks(rich_server, local_page):
    url, _ = rich_server
    page = local_page
    page.goto(url + "/api/docs")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    text = page.inner_text("main")
    assert "`" not in text
    forecast = page.locator("#forecast")
    assert forecast.locator(".endpoint-body > p code", has_text="cold_start").count() == 1
    assert page.locator("td.wrap code", has_text="admin-token").count() >= 1


def _every_page(model_app, run_id: int) -> list[str]:
    forecaster = model_app.extensions["model_holder"].get()
    store = forecaster.stores()[0]
    dept = forecaster.departments(store)[0]
    return [
        "/",
        f"/store?store={store}",
        "/batch",
        "/model",
        "/forecast-runs",
        f"/series/{store}/{dept}",
        "/models",
        "/models/v1",
        "/runs",
        f"/runs?run={run_id}",
        f"/runs/{run_id}",
        "/monitoring",
        "/api/docs",
    ]


@pytest.mark.parametrize("width", (1280, 375))
def test_axe_finds_nothing_above_minor_on_any_page(model_app, rich_server, local_page, width):
    if not AXE.exists():
        pytest.skip("static/vendor/axe.min.js missing: run scripts/setup_assets.sh")
    url, run_id = rich_server
    page = local_page
    page.set_viewport_size({"width": width, "height": 900})
    problems = {}
    for path in _every_page(model_app, run_id):
        page.goto(url + path)
        page.evaluate("() => document.querySelectorAll('details.endpoint').forEach(d => d.open = true)")
        problems[path] = axe_problems(page, ("moderate", "serious", "critical"))
    page.goto(url + "/")  # and a forecast's answer, swapped in
    page.wait_for_function("() => window.htmx !== undefined")
    page.fill("#weeks", "13")
    page.click("button[type=submit]:has-text('Forecast')")
    page.wait_for_selector("[data-testid=result-multi]")
    problems["/ (13 weeks)"] = axe_problems(page, ("moderate", "serious", "critical"))
    found = {path: lines for path, lines in problems.items() if lines}
    assert found == {}, "\n".join(f"{path}: {line}" for path, lines in found.items() for line in lines)
