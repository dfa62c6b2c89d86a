"""Promoting a version that scores worse than production on the same weeks needs an explicit `force`,
everywhere; backtests of different weeks never refuse a promotion."""

from __future__ import annotations

from html import unescape

import pytest

from app.registry import promotion, versions
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.forms import csrf_token

NAME = "storecast"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MESSAGE = (
    "v2 is 7.3% worse than production v1 on the same weeks 2012-02-03..2012-10-26 from 2012-01-27 "
    "(1,000 forecasts, their stored backtests): WMAE 1,612 (0.806x seasonal naive) against 1,502 (0.751x)"
)
WINDOW = {"origin": "2012-01-27", "horizon": 39, "rows": 1000, "baseline_wmae": 2000.0}


def _register(app, artifact, wmae, lineage=None, stage=None, window=WINDOW):
    return versions.register_version(
        app.extensions["storage"],
        NAME,
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind="hgb",
        metrics={"wmae": wmae, **window},
        data_lineage=lineage,
        stage=stage,
        by="tests",
    )


@pytest.fixture
def worse(registry_app, artifacts):
    """v1 in production with WMAE 1,502; v2 in staging with 1,612 (7.3% worse); v3 better, 1,400."""
    _register(registry_app, artifacts[0], 1502.0)
    _register(registry_app, artifacts[1], 1612.0)
    _register(registry_app, artifacts[2], 1400.0)
    return registry_app


def _production(app) -> int:
    return versions.production_version(app.extensions["storage"], NAME)["version"]


def test_the_service_refuses_a_worse_backtest_and_says_by_how_much(worse):
    storage = worse.extensions["storage"]
    with pytest.raises(versions.WorseThanProduction) as refused:
        versions.promote(storage, NAME, 2, by="x")
    assert str(refused.value).startswith(MESSAGE)
    assert refused.value.comparison["worse_by"] == pytest.approx(1612 / 1502 - 1)
    assert _production(worse) == 1
    assert promotion.warning(storage, NAME, "v2", None)["message"] == MESSAGE
    assert promotion.warning(storage, NAME, 3, None) is None  # better: nothing to confirm
    assert promotion.warning(storage, NAME, 9, None) is None

    versions.promote(storage, NAME, 2, by="x", reason="holiday weeks look right", force=True)
    assert _production(worse) == 2
    reason = versions.stage_history(storage, NAME)[0]["reason"]
    assert reason == f"holiday weeks look right; forced: {MESSAGE}"  # the history keeps the override
    versions.promote(storage, NAME, 3, by="x")  # better than production: no force needed


def test_backtests_of_different_weeks_are_not_compared(registry_app, artifacts):
    """A model trained through 2012-06-29 (backtest from 2011-09-30) against one trained on all the data
    (backtest from 2012-01-27): their WMAEs are of different weeks, so neither refuses the other."""
    storage = registry_app.extensions["storage"]
    _register(registry_app, artifacts[0], 1502.0, window={**WINDOW, "baseline_wmae": 1896.0})
    earlier = {"origin": "2011-09-30", "horizon": 39, "rows": 980, "baseline_wmae": 2125.0}
    _register(registry_app, artifacts[1], 1744.0, window=earlier)
    assert promotion.warning(storage, NAME, 2, None) is None
    promoted = registry_app.test_cli_runner().invoke(args=["models", "promote", "v2"])
    assert promoted.exit_code == 0, promoted.output
    assert (
        "were not compared: their backtests scored different weeks (from 2011-09-30 and from 2012-01-27)"
        in (promoted.output)
    )
    assert _production(registry_app) == 2


def test_backtests_of_other_data_are_not_compared(registry_app, artifacts):
    _register(registry_app, artifacts[0], 1000.0, lineage="a" * 16)
    _register(registry_app, artifacts[1], 9000.0, lineage="b" * 16, stage="staging")
    versions.promote(registry_app.extensions["storage"], NAME, 2, by="x")
    assert _production(registry_app) == 2


def test_the_api_needs_force(worse):
    client = worse.test_client()
    response = client.post("/api/v1/models/2/promote", headers=BEARER, json={"reason": "try"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"].startswith(MESSAGE) and "force" in body["error"]
    assert body["details"] == [{"field": "force", "message": body["error"]}]
    bad = client.post("/api/v1/models/2/promote", headers=BEARER, json={"force": "yes"})
    assert bad.status_code == 422 and bad.get_json()["details"][0]["field"] == "force"
    assert _production(worse) == 1

    response = client.post("/api/v1/models/2/promote", headers=BEARER, json={"force": True})
    assert response.status_code == 200 and response.get_json()["label"] == "v2"


def test_the_cli_needs_force(worse):
    runner = worse.test_cli_runner()
    refused = runner.invoke(args=["models", "promote", "v2"])
    assert refused.exit_code != 0
    assert f"{MESSAGE}: add --force to promote it anyway" in refused.output
    assert _production(worse) == 1
    forced = runner.invoke(args=["models", "promote", "v2", "--force"])
    assert forced.exit_code == 0, forced.output
    assert _production(worse) == 2


def test_the_page_asks_for_confirmation_of_that_version(worse):
    client = worse.test_client()
    shown = unescape(client.get("/models?version=2&action=promote").get_data(as_text=True))
    assert MESSAGE in shown and 'name="force" value="v2"' in shown  # asked before anything is posted
    form = {
        "action": "promote",
        "version": "2",
        "token": ADMIN_TOKEN,
        "csrf_token": csrf_token(client, "/models"),
    }

    response = client.post("/models/action", data=form)
    assert response.status_code == 409 and MESSAGE in unescape(response.get_data(as_text=True))
    assert client.post("/models/action", data={**form, "force": "v3"}).status_code == 409  # not this one
    assert _production(worse) == 1

    assert client.post("/models/action", data={**form, "force": "v2"}).status_code == 303
    assert _production(worse) == 2
