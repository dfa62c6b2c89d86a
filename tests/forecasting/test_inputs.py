"""The one home of input parsing: one set of missing-value words, one covariate catalogue, one horizon."""

from __future__ import annotations

import numpy as np
import pytest

from app.forecasting import forecaster, inputs
from app.forecasting.data import COVARIATE_COLUMNS, KAGGLE_COVARIATES
from app.forecasting.features import FEATURE_LABELS
from app.forecasting.inputs import NA_TOKENS, DataError, is_na, parse_float, parse_int, read_table


@pytest.mark.parametrize("text", ["", " ", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none"])
def test_every_spelling_of_missing_is_missing(text):
    assert is_na(text)


@pytest.mark.parametrize("token", sorted(NA_TOKENS))
def test_a_missing_covariate_in_a_data_file(tmp_path, token):
    (tmp_path / "features.csv").write_text(f"Store,MarkDown1\n1,{token.upper()}\n2,5.5\n")
    table = read_table(tmp_path, "features.csv", ["Store", "MarkDown1"], ["Store", "MarkDown1"])
    values, missing = parse_float(table, "MarkDown1", required=False)
    assert missing == 1 and np.isnan(values[0]) and values[1] == 5.5


def test_a_parse_error_names_the_file_line_and_column(tmp_path):
    (tmp_path / "stores.csv").write_text("Store,Size\n1,100\n2.5,200\n")
    table = read_table(tmp_path, "stores.csv", ["Store", "Size"], ["Store", "Size"])
    with pytest.raises(DataError) as error:
        parse_int(table, "Store")
    assert (error.value.file, error.value.line, error.value.column) == ("stores.csv", 3, "Store")


def test_one_covariate_catalogue_names_the_columns_and_the_features():
    assert list(inputs.COVARIATES) == COVARIATE_COLUMNS
    assert KAGGLE_COVARIATES["cpi"] == "CPI"
    assert all(FEATURE_LABELS[name] == c.label for name, c in inputs.COVARIATES.items())


def test_the_forecaster_enforces_the_one_horizon():
    assert forecaster.MAX_HORIZON is inputs.MAX_HORIZON
