"""Web fixtures: the real small model (tests/conftest.py's model_app) and what it can answer.

Nothing here is a stand-in: stores, departments and weeks are read from the Forecaster that
model_app serves, so the tests follow the model wherever the synthetic data puts it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.helpers.known import Known


@pytest.fixture
def forecaster(model_app):
    """The Forecaster model_app serves (loaded from its registry, as requests get it)."""
    return model_app.extensions["model_holder"].get()


@pytest.fixture
def known(forecaster) -> Known:
    stores = forecaster.stores()
    store = stores[0]
    depts = forecaster.departments(store)
    other = next(
        (s for s in stores[1:] if set(depts) - set(forecaster.departments(s))),
        None,
    )
    assert other is not None, "the small dataset should have a store lacking some department"
    other_depts = forecaster.departments(other)
    first, last = forecaster.valid_range()
    return Known(
        store=store,
        dept=depts[0],
        dept2=depts[1],
        other_store=other,
        other_depts=tuple(other_depts),
        missing_dept=min(set(depts) - set(other_depts)),
        unknown_store=max(stores) + 1,
        week=first.date().isoformat(),
        last_week=last.date().isoformat(),
        after=(last + dt.timedelta(weeks=1)).date().isoformat(),
        before=forecaster.origin.date().isoformat(),
    )


@pytest.fixture
def row(known) -> dict[str, Any]:
    """A valid predict row: the first store and department, the first forecastable week."""
    return {"store": known.store, "dept": known.dept, "date": known.week}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }


@pytest.fixture
def local_page(page):
    """A page that refuses (and records) any request leaving 127.0.0.1."""
    outside: list[str] = []

    def guard(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    # validation answers are swapped in, and a promotion awaiting confirmation answers 409: not failures
    expected = ("status of 422", "status of 413", "status of 409")
    assert [e for e in errors if not any(x in e for x in expected)] == [], errors
