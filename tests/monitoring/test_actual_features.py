"""Actual covariates: parsed like the loader's features.csv, upserted idempotently, read back, CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from app.forecasting.data import FEATURE_COLUMNS
from app.monitoring import actual_features

HEADER = ",".join(actual_features.HEADER)
ROW = "\n1,2012-11-02,55,3,NA,NA,NA,NA,NA,NA,NA,FALSE"
CSV = (
    HEADER + "\r"
    "1,2012-11-02,55.3,3.386,6766.44,5147.7,50.82,3639.9,2737.42,223.46,6.573,FALSE\r"
    "1,2012-11-23,48.1,3.236,NA,NA,NA,NA,NA,223.91,6.573,TRUE\r"
    "2,2012-11-02,60.0,3.386,NA,NA,NA,NA,NA,NA,NA,FALSE\r"
)


def test_parse_gives_the_dataset_features_format_with_nas():
    frame = actual_features.parse_features_csv(CSV)
    assert list(frame.columns) == FEATURE_COLUMNS and len(frame) == 3
    assert frame.loc[1, "is_holiday"] and pd.isna(frame.loc[1, "markdown1"])
    assert frame.loc[0, "date"] == pd.Timestamp("2012-11-02") and frame.loc[0, "markdown1"] == 6766.44


@pytest.mark.parametrize(
    "text, field, line",
    [
        (HEADER + "\n1,2012-11-03,55,3,NA,NA,NA,NA,NA,NA,NA,FALSE\n", "Date", 2),
        (HEADER + "\n1,2012-11-02,warm,3,NA,NA,NA,NA,NA,NA,NA,FALSE\n", "Temperature", 2),
        (
            HEADER + ROW + ROW.replace(",55,", ",56,"),
            "",
            3,
        ),
        ("Store,Date\n1,2012-11-02\n", "Temperature", 1),
        ("", "", 1),
    ],
)
def test_mistakes_are_reported_by_line_and_column(text, field, line):
    with pytest.raises(actual_features.FeaturesError) as caught:
        actual_features.parse_features_csv(text)
    problem = caught.value.errors[0]
    assert problem["line"] == line and (not field or any(e["field"] == field for e in caught.value.errors))


def test_upsert_is_idempotent_updates_corrections_and_reads_back(mon_app):
    storage = mon_app.extensions["storage"]
    with storage.session() as session:
        first = actual_features.import_features_csv(session, CSV)
    assert first.to_dict() == {"received": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    with storage.session() as session:
        again = actual_features.import_features_csv(session, CSV)
    assert again.to_dict() == {"received": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    corrected = CSV.replace("55.3,", "57.0,")
    with storage.session() as session:
        fixed = actual_features.import_features_csv(session, corrected)
    assert fixed.to_dict() == {"received": 3, "inserted": 0, "updated": 1, "unchanged": 2}
    frame = actual_features.features_frame(storage)
    assert list(frame.columns) == FEATURE_COLUMNS and len(frame) == 3
    assert frame.loc[0, "temperature"] == 57.0 and pd.isna(frame.loc[2, "cpi"])
    assert len(actual_features.features_frame(storage, since=pd.Timestamp("2012-11-10").date())) == 1
    assert actual_features.newest_week(storage) == pd.Timestamp("2012-11-23").date()


def test_cli_imports_features_and_reports_errors(mon_app, tmp_path):
    good, bad = tmp_path / "features.csv", tmp_path / "bad.csv"
    good.write_text(CSV)
    bad.write_text(HEADER + "\n1,2012-11-02,warm,3,NA,NA,NA,NA,NA,NA,NA,FALSE\n")
    runner = mon_app.test_cli_runner()
    result = runner.invoke(args=["actuals", "import-features", str(good)])
    assert result.exit_code == 0 and "3 rows, 3 inserted" in result.output
    result = runner.invoke(args=["actuals", "import-features", str(bad)])
    assert result.exit_code == 1 and "bad.csv, line 2, column Temperature" in result.output
