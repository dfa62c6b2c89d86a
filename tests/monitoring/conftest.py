"""Monitoring fixtures: training rows with their covariates, what drift is measured against."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def covariate_frame(small_dataset) -> pd.DataFrame:
    """Training rows with their covariates: what the reference is built from and windows are drawn like."""
    sales = small_dataset.sales[["store", "dept", "date", "weekly_sales", "is_holiday"]]
    covariates = small_dataset.features.drop(columns=["is_holiday"])
    return sales.merge(covariates, on=["store", "date"], how="left")
