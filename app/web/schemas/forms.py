"""The forecast page's form: the same request model as the API, read from HTML form values."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.forecasting.inputs import MAX_HORIZON, QUANTILE_RANGE
from app.web.schemas.requests import PredictRequest


class ForecastForm(PredictRequest):
    """The forecast page's form: a single week (weeks=1) or a multi-week forecast from `date`."""

    weeks: int = Field(1, ge=1, le=MAX_HORIZON, description="1: a single week; more: a multi-week forecast")
    service_level: int | None = Field(
        None,
        ge=round(100 * QUANTILE_RANGE[0]),
        le=round(100 * QUANTILE_RANGE[1]),
        description="a service level in percent: each week also says what to stock to meet it (a quantile)",
    )

    def quantiles(self) -> list[float] | None:
        """The quantile the service level asks for (90%: the 0.9 quantile), or None."""
        return None if self.service_level is None else [self.service_level / 100]


def clean_form(form: Any, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """HTML form values as schema input: blank means "not given" (so the model fills it)."""
    data: dict[str, Any] = {}
    for name in fields:
        value = form.get(name)
        if value is None:
            continue
        value = value.strip()
        if value == "" or (name == "is_holiday" and value == "auto"):
            continue
        data[name] = value
    return data
