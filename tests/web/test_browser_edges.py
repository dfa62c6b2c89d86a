"""Browser tests for the rough edges of issue 11 that a page shows (real headless chromium).

Promotion confirmation and disabled admin forms, chart order and plain feature names, integers and code
in pages, screen-reader titles, keyboard-reachable tables, contrast in both themes, charts at 375 px.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.registry import versions
from tests.conftest import make_test_app
from tests.registry.conftest import ADMIN_TOKEN
from tests.web.conftest import serve

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


def _register(app, artifact, wmae: float, label: str) -> None:
    path = artifact.path.with_name(f"{label}{artifact.path.suffix}")
    path.write_bytes(artifact.path.read_bytes())
    versions.register_version(
        app.extensions["storage"],
        app.config["MODEL_NAME"],
        artifact_path=path,
        artifact_sha256=artifact.sha256,
        model_kind="hgb",
        metrics={"wmae": wmae},
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
    assert "v2's backtest WMAE 1,612 is 7.3% worse than production v1's 1,502" in warning.inner_text()
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
