"""Published forecast runs: 52 weeks for every series, stored once; the CSV is the stored rows."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from app.loop import publish
from app.loop.history import production_forecaster
from app.monitoring import alerts


def test_a_run_stores_52_weeks_for_every_series_and_its_csv_equals_the_rows(loop_app):
    storage = loop_app.extensions["storage"]
    forecaster = production_forecaster(storage, loop_app.config["MODEL_NAME"])
    run = publish.publish(storage, forecaster)
    rows = publish.run_rows(storage, run.id)
    series = int(forecaster.state.has_history.sum())
    assert run.series == series and run.rows == len(rows) == series * 52
    assert run.data_through == forecaster.data_through and run.model_version == forecaster.version
    assert {r["lag"] for r in rows} == set(range(1, 53))
    assert all(
        r["lower_95"] <= r["lower_80"] <= r["prediction"] <= r["upper_80"] <= r["upper_95"] for r in rows
    )

    frame = pd.read_csv(io.StringIO("".join(publish.csv_lines(rows))))
    assert list(frame.columns) == [
        "Store",
        "Dept",
        "Date",
        "lag",
        "prediction",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]
    assert len(frame) == len(rows)
    np.testing.assert_allclose(frame["prediction"], [r["prediction"] for r in rows], atol=0.005)
    assert list(frame["Date"]) == [r["week"].isoformat() for r in rows]

    expected = forecaster.forecast_all()
    np.testing.assert_allclose(sorted(frame["prediction"]), sorted(expected["prediction"]), atol=0.005)


def test_publish_command_writes_the_run_as_csv(loop_app, tmp_path):
    out = tmp_path / "run.csv"
    result = loop_app.test_cli_runner().invoke(args=["forecast", "publish", "--out", str(out)])
    assert result.exit_code == 0, result.output
    storage = loop_app.extensions["storage"]
    run = publish.latest_run(storage)
    assert f"forecast run {run.id}" in result.output
    written = pd.read_csv(out)
    assert len(written) == run.rows
    with storage.session() as session:  # the training data's own last week is not an ingested week
        assert alerts.open_alerts(session, "data_quality") == []
    assert out.read_text() == "".join(publish.csv_lines(publish.run_rows(storage, run.id)))


def test_publish_command_without_a_model_says_so(app):
    result = app.test_cli_runner().invoke(args=["forecast", "publish"])
    assert result.exit_code != 0 and "no production model" in result.output
