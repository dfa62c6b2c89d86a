"""The one request schema: what it accepts, what it refuses, and how the CSV reader feeds it."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from app.forecasting.inputs import COVARIATES, MAX_HORIZON
from app.web.api.errors import ApiError, validation_details
from app.web.csv_io import parse_csv, predictions_csv, validate_rows
from app.web.errors import form_errors
from app.web.schemas import (
    ForecastForm,
    ForecastRequest,
    PredictRequest,
    StoreForecastQuery,
    clean_form,
    input_features,
)


def fields(error: ValidationError) -> list[str]:
    return [d["field"] for d in validation_details(error)]


def test_minimal_row_and_to_row_keeps_only_given_covariates():
    row = PredictRequest.model_validate({"store": "3", "dept": 7, "date": "2012-11-02", "cpi": 211.5})
    assert row.to_row() == {"store": 3, "dept": 7, "date": dt.date(2012, 11, 2), "cpi": 211.5}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"store": "1; DROP TABLE", "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": True, "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": 0, "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": 1.5, "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": "1_0", "dept": 1, "date": "2012-11-02"}, "store"),  # Python's int() would read 10
        ({"store": 1, "dept": "9_2", "date": "2012-11-02"}, "dept"),
        ({"store": 1, "dept": -2, "date": "2012-11-02"}, "dept"),
        ({"store": 1, "dept": 1, "date": "2012-02-30"}, "date"),
        ({"store": 1, "dept": 1, "date": 20121102}, "date"),
        ({"store": 1, "dept": 1, "date": "next friday"}, "date"),
        ({"store": 1, "dept": 1}, "date"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "temperature": 1e9}, "temperature"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "cpi": float("nan")}, "cpi"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "cpi": True}, "cpi"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "is_holiday": "maybe"}, "is_holiday"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "colour": "red"}, "colour"),
    ],
)
def test_invalid_rows_name_the_field(payload, field):
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate(payload)
    assert field in fields(info.value)


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate({"store": "x", "dept": "y", "date": "2012-13-01"})
    assert fields(info.value) == ["store", "dept", "date"]


def test_forecast_request_bounds_and_covariates():
    req = ForecastRequest.model_validate(
        {"store": 1, "dept": 1, "weeks": 3, "covariates": [{"cpi": 200}, {}]}
    )
    assert req.start is None and req.covariate_dicts() == [{"cpi": 200.0}, {}]
    for weeks in (0, 53, "many"):
        with pytest.raises(ValidationError) as info:
            ForecastRequest.model_validate({"store": 1, "dept": 1, "weeks": weeks})
        assert fields(info.value) == ["weeks"]
    with pytest.raises(ValidationError) as info:
        ForecastRequest.model_validate({"store": 1, "dept": 1, "weeks": 1, "covariates": [{}, {}]})
    assert fields(info.value) == ["covariates"]
    with pytest.raises(ValidationError) as info:
        ForecastRequest.model_validate({"store": 1, "dept": 1, "weeks": 2, "covariates": [{"cpi": -1}]})
    assert fields(info.value) == ["covariates[0].cpi"]


def test_store_query_and_form_helpers():
    assert StoreForecastQuery.model_validate({"store": "4", "weeks": "12"}).weeks == 12
    form = {"store": " 2 ", "dept": "5", "date": "2012-11-02", "is_holiday": "auto", "cpi": "", "weeks": "4"}
    data = clean_form(form, list(form))
    assert data == {"store": "2", "dept": "5", "date": "2012-11-02", "weeks": "4"}
    parsed = ForecastForm.model_validate(data)
    assert parsed.weeks == 4 and parsed.is_holiday is None
    with pytest.raises(ValidationError) as info:
        ForecastForm.model_validate({"store": "a", "dept": "1", "date": "2012-02-30", "weeks": "99"})
    assert set(form_errors(info.value)) == {"store", "date", "weeks"}


def test_input_features_expose_types_and_ranges():
    features = {f["name"]: f for f in input_features()}
    assert features["store"]["required"] and features["store"]["minimum"] == 1
    assert features["date"]["type"] == "date"
    assert features["unemployment"]["maximum"] == 100 and not features["unemployment"]["required"]


# CSV
def test_kaggle_test_csv_columns_with_bare_cr_and_na():
    text = (
        "Store,Dept,Date,IsHoliday,MarkDown1,Weekly_Sales\r"
        "1,1,2012-11-02,FALSE,NA,24924.5\r2,3,2012-11-09,TRUE,,1\r"
    )
    parsed = parse_csv(text, 1000)
    assert parsed.rows == [
        {"store": "1", "dept": "1", "date": "2012-11-02", "is_holiday": "FALSE"},
        {"store": "2", "dept": "3", "date": "2012-11-09", "is_holiday": "TRUE"},
    ]
    assert parsed.lines == [2, 3]
    assert parsed.passthrough[0] == {"weekly_sales": "24924.5"}
    valid, errors = validate_rows(parsed.rows, parsed.lines)
    assert errors == [] and valid[1].is_holiday is True


def test_csv_errors_by_line_and_field():
    text = "Store,Dept,Date\n1,1,2012-11-02\nx,1,2012-11-02\n1,1,2012-02-30\n"
    parsed = parse_csv(text, 1000)
    _, errors = validate_rows(parsed.rows, parsed.lines)
    assert [(e["row"], e["line"], e["field"]) for e in errors] == [
        (1, 3, "rows[1].store"),
        (2, 4, "rows[2].date"),
    ]


@pytest.mark.parametrize(
    ("text", "status", "field"),
    [
        ("", 400, "file"),
        ("\x00\x01PK\x03junk", 400, "file"),
        ("Store,Dept\n1,1\n", 400, "date"),
        ("Store,Dept,Date,Colour\n1,1,2012-11-02,red\n", 400, "Colour"),
        ("Store,Dept,Date\n", 400, "rows"),
        ("Store,Dept,Date\n" + "1,1,2012-11-02\n" * 6, 413, "rows"),
    ],
)
def test_csv_header_and_size_problems(text, status, field):
    with pytest.raises(ApiError) as info:
        parse_csv(text, 5)
    assert info.value.status == status
    assert field in [d["field"] for d in info.value.details]
    if status == 413:
        assert "5" in info.value.message


def test_predictions_csv_keeps_passthrough_columns_first():
    rows = [
        {"store": 1, "dept": 2, "week": "2012-11-02", "prediction": 10.0, "assumed": {"cpi": "last_year"}}
    ]
    text = predictions_csv(rows, [{"weekly_sales": "9.5"}])
    header, line = text.strip().splitlines()
    assert header.startswith("weekly_sales,store,dept,week")
    assert line.startswith("9.5,1,2,2012-11-02") and "cpi=last_year" in line


def test_request_fields_take_the_covariate_catalogue_and_the_horizon():
    for name, covariate in COVARIATES.items():
        field = PredictRequest.model_fields[name]
        assert field.title == covariate.label and covariate.unit in field.description
    with pytest.raises(ValidationError):
        ForecastRequest.model_validate(
            {"store": 1, "dept": 1, "date": "2012-11-02", "weeks": MAX_HORIZON + 1}
        )


@pytest.mark.parametrize("token", ["N/A", "NA", "none", ""])
def test_a_batch_csv_reads_missing_values_as_the_data_files_do(token):
    parsed = parse_csv(f"Store,Dept,Date,MarkDown1\n1,1,2012-11-02,{token}\n", 10)
    valid, errors = validate_rows(parsed.rows, parsed.lines)
    assert not errors and valid[0].markdown1 is None
