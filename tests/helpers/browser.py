"""Serving a test app to a real browser on 127.0.0.1, and waiting for its HTMX."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# A browser test module's marks: `pytestmark = IN_CHROMIUM`.
IN_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]
WIDTHS = {1280: 900, 375: 812}  # viewport width -> height: a desktop and a phone
KEY_COLUMNS = ["WEEK", "FORECAST", "80% LOW", "80% HIGH"]  # a week table's columns on a phone


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve `app` with werkzeug in a thread on a free loopback port (browser tests); yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def shot(page, name: str, selector: str | None = None) -> None:
    """A screenshot for a person to look at, into STORECAST_SHOTS when it names a folder: the full page,
    or only the element `selector` (a table read at its real size)."""
    folder = os.environ.get("STORECAST_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = str(Path(folder) / f"{name}.png")
        if selector:
            page.locator(selector).screenshot(path=path)
        else:
            page.screenshot(path=path, full_page=True)


def wait_htmx(page) -> None:
    """Wait until the page has loaded HTMX (before clicking what it drives)."""
    page.wait_for_function("() => window.htmx !== undefined")


AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe.min.js"


def axe_problems(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of these impacts on the page as it is now, one line per rule and element.

    axe comes from static/vendor/ (scripts/setup_assets.sh, from npm) and is evaluated in the page
    (not added as a <script>, which the CSP refuses): nothing is fetched from outside 127.0.0.1.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, targets: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [f"{v['id']} ({v['impact']}): {t}" for v in found if v["impact"] in impacts for t in v["targets"]]


# The size a chart's text is drawn at on screen: its font size times the scale of its SVG.
CHART_TEXT_PX_JS = """selector => [...document.querySelectorAll(selector + ' svg[role=img]')].flatMap(svg => {
  const box = svg.getBoundingClientRect();
  if (!box.width) return [];  // the drawing for the other width, hidden
  const scale = box.width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
    .map(t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale]);
})"""


def chart_text_sizes(page, selector: str) -> list[tuple[str, float]]:
    """Every visible chart text under `selector` with the size it is drawn at, in CSS pixels."""
    return [(text, size) for text, size in page.evaluate(CHART_TEXT_PX_JS, selector)]
