"""The promotion gate scores candidate and production on the same weeks, from the same origins, beside
the seasonal naive on those rows, and says which weeks."""

from __future__ import annotations

from html import unescape

import numpy as np
import pytest

from app.forecasting.artifacts import load_forecaster
from app.forecasting.synthetic import generate_dataset, write_kaggle_csvs
from app.registry import gate, promotion, versions
from tests.helpers.admin import ADMIN_TOKEN
from tests.helpers.app import make_test_app
from tests.helpers.training import SMALL_TRAIN_PARAMS

NAME = "storecast"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kaggle7")
    write_kaggle_csvs(generate_dataset(seed=7, n_stores=4, n_depts=6), directory)  # sales to 2012-10-26
    return directory


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=[str(arg) for arg in args])


def test_two_models_trained_through_different_dates_are_compared_on_the_weeks_after_both(tmp_path, data_dir):
    app = make_test_app(tmp_path, TRAIN_PARAMS=SMALL_TRAIN_PARAMS)
    storage = app.extensions["storage"]
    first = invoke(app, "train", "--data", data_dir, "--through", "2012-03-30")
    assert first.exit_code == 0 and "registered v1 in production" in first.output, first.output
    second = invoke(app, "train", "--data", data_dir, "--through", "2012-06-29", "--model", "naive")
    assert "registered v2 in staging: production v1 is kept" in second.output, second.output
    v1, v2 = (versions.get_version(storage, NAME, n) for n in (1, 2))
    assert v1["metrics"]["origin"] != v2["metrics"]["origin"]  # their own backtests: different weeks

    dataset = generate_dataset(seed=7, n_stores=4, n_depts=6)
    comparison = gate.compare(v2, v1, dataset)
    assert comparison["comparable"] and comparison["weeks"] == ["2012-07-06", "2012-10-26"]
    assert comparison["origins"] == ["2012-06-29", "2012-09-28"]  # 13 weeks apart, after both trainings
    # The naive model is the seasonal naive: on the same rows its ratio is exactly 1.
    assert comparison["ratio_to_naive"] == pytest.approx(1.0)
    # Independently: production rolled to each origin (sales after its training join its history),
    # forecasting every later week, scored against the actual sales (holiday weeks x5).
    production = load_forecaster(v1["artifact_path"])
    sales, errors, weights = dataset.sales, [], []
    for origin in ("2012-06-29", "2012-09-28"):
        rolled = production.with_history(sales[(sales["date"] > "2012-03-30") & (sales["date"] <= origin)])
        later = sales[sales["date"] > origin]
        predicted = rolled.predict_frame(later[["store", "dept", "date"]])["prediction"].to_numpy()
        errors.append(np.abs(later["weekly_sales"].to_numpy() - predicted))
        weights.append(np.where(later["is_holiday"], 5.0, 1.0))
    expected = float(np.sum(np.concatenate(weights) * np.concatenate(errors)) / np.concatenate(weights).sum())
    assert comparison["production_wmae"] == pytest.approx(expected)
    assert comparison["rows"] == sum(len(e) for e in errors)

    promoted = invoke(app, "models", "promote", "v2")
    where = "on the same weeks 2012-07-06..2012-10-26 from 2 origins 2012-06-29..2012-09-28"
    if comparison["worse"]:
        assert promoted.exit_code != 0 and where in promoted.output and "add --force" in promoted.output
        assert versions.production_version(storage, NAME)["version"] == 1
    else:
        assert promoted.exit_code == 0 and where in promoted.output


def test_a_production_model_that_saw_every_week_is_not_compared(tmp_path, data_dir):
    """Production trained on all the data: no week is held out from both, so no refusal by figures of
    different weeks; the command says so."""
    app = make_test_app(tmp_path, TRAIN_PARAMS=SMALL_TRAIN_PARAMS)
    assert invoke(app, "train", "--data", data_dir, "--model", "naive").exit_code == 0
    assert invoke(app, "train", "--data", data_dir, "--through", "2012-06-29").exit_code == 0
    promoted = invoke(app, "models", "promote", "v2")
    assert promoted.exit_code == 0, promoted.output
    assert (
        "v2 and production v1 were not compared: v2 saw sales through 2012-06-29, v1 through 2012-10-26, "
        "and the data ends 2012-10-26: no week is held out from both"
    ) in promoted.output
    assert "v2 is now in production" in promoted.output


def test_the_page_and_the_api_promote_through_the_same_comparison(tmp_path, data_dir):
    """A person promoting from the models page or the API meets the gate the CLI applies: both models
    scored on the weeks after both trainings, the weeks named, not their stored backtests."""
    app = make_test_app(tmp_path, TRAIN_PARAMS=SMALL_TRAIN_PARAMS, STORECAST_ADMIN_TOKEN=ADMIN_TOKEN)
    storage = app.extensions["storage"]
    assert invoke(app, "train", "--data", data_dir, "--through", "2012-03-30").exit_code == 0
    naive = invoke(app, "train", "--data", data_dir, "--through", "2012-06-29", "--model", "naive")
    assert naive.exit_code == 0, naive.output
    comparison = promotion.against_production(storage, NAME, 2, app.config.get("DATA_SOURCE_FILE"))
    where = "on the same weeks 2012-07-06..2012-10-26 from 2 origins 2012-06-29..2012-09-28"
    assert comparison["comparable"] and where in comparison["message"]

    client = app.test_client()
    page = unescape(client.get("/models?version=2&action=promote").get_data(as_text=True))
    answer = client.post("/api/v1/models/2/promote", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    if comparison["worse"]:
        assert where in page and 'name="force" value="v2"' in page
        assert answer.status_code == 409 and where in answer.get_json()["error"]
        assert versions.production_version(storage, NAME)["version"] == 1
    else:
        assert answer.status_code == 200 and where in answer.get_json()["comparison"]
        assert versions.production_version(storage, NAME)["version"] == 2
