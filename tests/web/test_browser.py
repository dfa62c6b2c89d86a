"""Browser tests: Debian's chromium through Playwright against a real server on 127.0.0.1.

Every request the page makes is checked: anything not addressed to 127.0.0.1 fails the test (and is
aborted), so a CDN reference anywhere would show up here. test_offline_run repeats the smoke test
with the network namespace cut off (`unshare -n`, loopback only) where that is possible.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.browser import IN_CHROMIUM, serve, wait_htmx

pytestmark = IN_CHROMIUM
VENDOR_HTMX = Path(__file__).resolve().parents[2] / "static" / "vendor" / "htmx.min.js"


@pytest.fixture
def live_server(model_app):
    """The app with the small real model, served by werkzeug in a thread on a free loopback port."""
    if not VENDOR_HTMX.exists():
        pytest.skip("static/vendor/htmx.min.js missing: run scripts/setup_assets.sh")
    with serve(model_app) as url:
        yield url


def test_single_week_prediction(live_server, local_page):
    page = local_page
    page.goto(live_server + "/")
    wait_htmx(page)
    with page.expect_response(lambda r: "/partials/covariates" in r.url):  # after the departments
        page.select_option("#store", index=1)  # HTMX reloads the departments, then the placeholders
    page.wait_for_selector("#dept option", state="attached")
    assert page.locator("#dept option").count() >= 1
    assert re.match(r"^-?[\d.]+$", page.get_attribute("#temperature", "placeholder"))  # the model's value
    page.fill("#weeks", "1")
    page.click("button[type=submit]:has-text('Forecast')")
    result = page.wait_for_selector("[data-testid=result-single]")
    assert re.match(r"^\$[\d,]+$", page.inner_text("[data-testid=prediction]"))
    assert "80% interval" in result.inner_text().lower()
    assert page.url == live_server + "/"  # swapped in place, no navigation


def test_multi_week_chart_and_csv(live_server, local_page):
    page = local_page
    page.goto(live_server + "/")
    wait_htmx(page)
    page.click("[data-set-weeks='13']")
    assert page.input_value("#weeks") == "13"
    page.click("button[type=submit]:has-text('Forecast')")
    page.wait_for_selector("[data-testid=result-multi]")
    assert page.locator("[data-testid=forecast-chart] svg >> visible=true").count() == 1
    assert page.locator("[data-testid=week-table] tbody tr").count() == 13
    assert (
        page.locator("[data-testid=why] svg >> visible=true").count() == 1
    )  # why this number: the waterfall
    with page.expect_download() as info:
        page.click("[data-testid=csv-download]")
    lines = Path(info.value.path()).read_text().strip().splitlines()
    assert len(lines) == 14 and lines[0].startswith("store,dept,week")
    assert lines[0].endswith(
        "last_year_week,last_year_sales,from_last_year,from_trend,from_holiday,from_covariates,from_model"
    )


def test_inline_validation_error(live_server, local_page):
    page = local_page
    page.goto(live_server + "/")
    wait_htmx(page)
    page.fill("#weeks", "99")
    page.click("button[type=submit]:has-text('Forecast')")
    error = page.wait_for_selector("#weeks-error")
    assert "52" in error.inner_text()


def test_batch_upload_and_download(live_server, local_page, tmp_path):
    page = local_page
    page.goto(live_server + "/")
    date = page.input_value("#date")
    store = page.input_value("#store")
    dept = page.input_value("#dept")
    csv_file = tmp_path / "test.csv"
    csv_file.write_text(
        f"Store,Dept,Date,IsHoliday\n{store},{dept},{date},FALSE\n{store},{dept},{date},TRUE\n"
    )
    page.goto(live_server + "/batch")
    wait_htmx(page)
    page.set_input_files("#file", str(csv_file))
    assert page.inner_text("#file-name") == "test.csv"
    page.click("button[type=submit]:has-text('Upload')")
    page.wait_for_selector("[data-testid=batch-result]")
    with page.expect_download() as info:
        page.click("[data-testid=batch-download]")
    lines = Path(info.value.path()).read_text().strip().splitlines()
    assert len(lines) == 3

    bad = tmp_path / "bad.csv"
    bad.write_text(f"Store,Dept,Date\n{store},{dept},2012-02-30\n")
    page.set_input_files("#file", str(bad))
    page.click("button[type=submit]:has-text('Upload')")
    errors = page.wait_for_selector("[data-testid=batch-errors]")
    assert "date" in errors.inner_text()


def test_store_page_and_theme_toggle(live_server, local_page):
    page = local_page
    page.goto(live_server + "/store")
    wait_htmx(page)
    page.click("button[type=submit]:has-text('Forecast the store')")
    page.wait_for_selector("[data-testid=store-chart] svg")
    assert "store=" in page.url  # hx-push-url keeps the URL shareable
    before = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.click("#theme-toggle")
    after = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert before != after
    page.reload()
    assert page.evaluate("() => document.documentElement.getAttribute('data-theme')") in ("dark", "light")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == after


def test_model_card_and_api_docs(live_server, local_page):
    page = local_page
    page.goto(live_server + "/model")
    page.wait_for_selector("[data-testid=model-card]")
    page.click("text=API docs >> nth=0")
    page.wait_for_selector("#predict")
    assert "/api/v1/predict" in page.content()


def test_series_page_from_the_runs_page(model_app, live_server, local_page, browser):
    from app.loop import publish

    forecaster = model_app.extensions["model_holder"].get()
    run = publish.publish(model_app.extensions["storage"], forecaster)
    store = forecaster.stores()[0]
    dept = forecaster.departments(store)[0]
    page = local_page
    page.goto(live_server + "/forecast-runs")
    page.fill("#series-store", str(store))
    page.fill("#series-dept", str(dept))
    page.click("button[type=submit]:has-text('Open series')")
    page.wait_for_url(f"**/series/{store}/{dept}")
    assert page.locator("[data-testid=series-chart] svg >> visible=true").count() == 1
    assert page.locator("[data-testid=series-latest] svg >> visible=true").count() == 1
    assert f"sales through {run.data_through.isoformat()}" in page.inner_text("[data-testid=series-latest]")
    page.click("a.chip:has-text('4 wk')")
    page.wait_for_url("**lag=4")
    phone = browser.new_context(viewport={"width": 375, "height": 812}).new_page()
    for path in ("/forecast-runs", f"/series/{store}/{dept}"):
        phone.goto(live_server + path)
        overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    phone.context.close()


def test_no_horizontal_scroll_on_a_phone(live_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    for path in ("/", "/store?store=1", "/batch", "/model", "/api/docs"):
        page.goto(live_server + path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    context.close()


@pytest.mark.skipif(os.environ.get("STORECAST_OFFLINE_RUN") == "1", reason="already inside the offline run")
def test_offline_run(tmp_path):
    """The single-week test again with no network at all (loopback only)."""
    if (
        not shutil.which("unshare")
        or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode
    ):
        pytest.skip("cannot create a network namespace here")
    root = Path(__file__).resolve().parents[2]
    command = (
        f"ip link set lo up && {sys.executable} -m pytest -q -p no:cacheprovider "
        f"{Path(__file__)}::test_single_week_prediction"
    )
    env = {**os.environ, "STORECAST_OFFLINE_RUN": "1"}
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
