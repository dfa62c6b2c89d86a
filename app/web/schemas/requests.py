"""Request models: ONE definition validates the API's bodies and query strings, the forms' fields and
the rows of a batch CSV, and generates the OpenAPI document (so the docs cannot drift from what is
enforced). Covariate labels, units and ranges, and the horizon, come from app/forecasting/inputs.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.forecasting.inputs import COVARIATES, MAX_HORIZON, QUANTILE_RANGE

DEFAULT_WEEKS = 8


COVARIATE_NAMES = tuple(COVARIATES)


# Kaggle train.csv / test.csv / features.csv headers (normalised: lower case, no "_") -> schema field.
CSV_COLUMNS: dict[str, str] = {
    "store": "store",
    "dept": "dept",
    "date": "date",
    "isholiday": "is_holiday",
    "temperature": "temperature",
    "fuelprice": "fuel_price",
    **{f"markdown{i}": f"markdown{i}" for i in range(1, 6)},
    "cpi": "cpi",
    "unemployment": "unemployment",
}


CSV_PASSTHROUGH = {"weeklysales": "weekly_sales", "id": "id"}  # kept for the results file, not predicted on


def _covariate(name: str) -> Any:
    covariate = COVARIATES[name]
    return Field(
        None,
        ge=covariate.low,
        le=covariate.high,
        description=(
            f"{covariate.description} ({covariate.unit}); omitted: the model's known or assumed value"
        ),
        title=covariate.label,
    )


def _reject_bool(value: Any) -> Any:
    # JSON true is not store 1 (nor a CPI of 1.0); pydantic's lax int and float would accept it.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _digits_only(value: Any) -> Any:
    # Python reads "1_0" as 10: a store or department typed with an underscore is a typo, not a number.
    if isinstance(value, str) and "_" in value:
        raise ValueError("a whole number, digits only")
    return value


def _plain_date(value: Any) -> Any:
    # A bare number is not a date (pydantic would read it as a Unix timestamp).
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("must be a date as YYYY-MM-DD")
    if isinstance(value, str):
        return value.strip()
    return value


class Covariates(BaseModel):
    """The optional per-week inputs; anything omitted is filled by the model and reported in `assumed`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    is_holiday: bool | None = Field(
        None, description="the week is a holiday week; omitted: from the holiday calendar"
    )
    temperature: float | None = _covariate("temperature")
    fuel_price: float | None = _covariate("fuel_price")
    markdown1: float | None = _covariate("markdown1")
    markdown2: float | None = _covariate("markdown2")
    markdown3: float | None = _covariate("markdown3")
    markdown4: float | None = _covariate("markdown4")
    markdown5: float | None = _covariate("markdown5")
    cpi: float | None = _covariate("cpi")
    unemployment: float | None = _covariate("unemployment")

    # its own name: PredictRequest inherits this class and _StoreDept, whose _no_bool it would hide
    _no_bool_covariates = field_validator(*COVARIATES, mode="before")(_reject_bool)

    def given(self) -> dict[str, Any]:
        """Only the values the caller set (None means: let the model fill it)."""
        values = self.__dict__
        return {name: values[name] for name in COVARIATE_FIELDS if values.get(name) is not None}


COVARIATE_FIELDS = ("is_holiday", *COVARIATE_NAMES)


StoreNumber = Annotated[int, Field(ge=1, le=9999, description="store number")]


DeptNumber = Annotated[int, Field(ge=1, le=999, description="department number")]


class _StoreDept(BaseModel):
    store: StoreNumber
    dept: DeptNumber

    _no_bool = field_validator("store", "dept", mode="before")(_reject_bool)
    _digits = field_validator("store", "dept", mode="before")(_digits_only)


class _Week(_StoreDept):
    date: dt.date = Field(
        description="the week, as YYYY-MM-DD; weeks end on Friday (another day means its week's Friday)"
    )

    _date = field_validator("date", mode="before")(_plain_date)


class PredictRequest(Covariates, _Week):
    """One week of one store-department: the body of POST /predict and each row of a batch."""

    def to_row(self) -> dict[str, Any]:
        """The row handed to Forecaster.predict_rows."""
        return {"store": self.store, "dept": self.dept, "date": self.date, **self.given()}


EXPLAIN_DESCRIPTION = (
    "true: each prediction also carries `components` (why this number: dollar parts that add up to it) "
    "and last year's actual sales of the aligned week (`last_year_week`, `last_year_sales`); it about "
    "doubles the model's share of the answer time"
)


QUANTILES_DESCRIPTION = (
    f"levels in {QUANTILE_RANGE[0]}..{QUANTILE_RANGE[1]}, e.g. [0.1, 0.5, 0.9]: each prediction also "
    'carries `quantiles` ({"q0.1": ..., "q0.5": ..., "q0.9": ...}): the sales the week stays under with '
    "that probability (0.9: stock to this number for a 90% service level); 0.1 and 0.9 are the 80% "
    "band's ends, 0.5 the forecast"
)

Quantile = Annotated[float, Field(ge=QUANTILE_RANGE[0], le=QUANTILE_RANGE[1])]


def _quantile_list(value: Any) -> Any:
    # A query string gives "0.1,0.9" (or the key repeated); JSON true is not a level.
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        for item in value:
            if isinstance(item, bool):
                raise ValueError("each quantile must be a number, not a boolean")
    return value


def _distinct(value: list[float] | None) -> list[float] | None:
    # Each level answers once, to 4 decimals (q0.1): one asked twice is a mistake, not two columns.
    if value is not None:
        seen = [round(q, 4) for q in value]
        repeated = sorted({q for q in seen if seen.count(q) > 1})
        if repeated:
            raise ValueError(f"each level once: {', '.join(f'{q:g}' for q in repeated)} repeated")
    return value


def quantiles_field() -> Any:
    return Field(None, min_length=1, max_length=99, description=QUANTILES_DESCRIPTION)


class QuantileLevels(BaseModel):
    """Quantiles asked for beside the bands (POST /predict, /predict/batch, /forecast)."""

    quantiles: list[Quantile] | None = quantiles_field()

    _quantile_list = field_validator("quantiles", mode="before")(_quantile_list)
    _distinct = field_validator("quantiles")(_distinct)


class PredictOneRequest(PredictRequest, QuantileLevels):
    """The body of POST /predict: one week, optionally explained, optionally with quantiles."""

    explain: bool = Field(False, strict=True, description=EXPLAIN_DESCRIPTION)


class BatchRequest(QuantileLevels):
    """The JSON body of POST /predict/batch (a text/csv body with the Kaggle columns works too)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[PredictRequest] = Field(description="at most MAX_BATCH_ROWS rows (100,000 by default)")


def _one_name_for_the_first_week(data: Any) -> Any:
    # `date` (as in /predict) and its alias `start` name the same thing: two values would be ambiguous
    if isinstance(data, dict) and data.get("date") is not None and data.get("start") is not None:
        raise PydanticCustomError("date_and_start", "`start` is an alias of `date`: send one of them")
    return data


FIRST_WEEK_DESCRIPTION = (
    "first week (YYYY-MM-DD), named `date` as in /predict; `start` is accepted as an alias; "
    "omitted: the week after the model's history"
)


class ForecastRequest(_StoreDept, QuantileLevels):
    """The body of POST /forecast: consecutive weeks of one store-department."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    start: dt.date | None = Field(
        None, validation_alias=AliasChoices("date", "start"), description=FIRST_WEEK_DESCRIPTION
    )
    weeks: int = Field(DEFAULT_WEEKS, ge=1, le=MAX_HORIZON, description="number of weeks, 1-52")
    covariates: list[Covariates] | None = Field(
        None,
        description="per-week inputs: item i applies to week i; shorter lists leave later weeks to the model",
    )
    cold_start: bool = Field(
        False,
        strict=True,
        description=(
            "accepted and not needed: a store-department without sales history is always answered with "
            "a cold-start estimate (`cold_start` true on each week) and a `warning`"
        ),
    )

    explain: bool = Field(False, strict=True, description=EXPLAIN_DESCRIPTION)

    _start = field_validator("start", mode="before")(_plain_date)
    _one_name = model_validator(mode="before")(_one_name_for_the_first_week)

    @field_validator("covariates")
    @classmethod
    def _at_most_weeks(cls, value: list[Covariates] | None, info: Any) -> list[Covariates] | None:
        weeks = info.data.get("weeks")
        if value is not None and weeks is not None and len(value) > weeks:
            raise ValueError(f"{len(value)} entries for {weeks} weeks")
        return value

    def covariate_dicts(self) -> list[dict[str, Any]] | None:
        return None if self.covariates is None else [c.given() for c in self.covariates]


class StoreForecastQuery(BaseModel):
    """GET /stores/<store>/forecast: path store, query start and weeks."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    store: StoreNumber
    start: dt.date | None = Field(
        None, validation_alias=AliasChoices("date", "start"), description=FIRST_WEEK_DESCRIPTION
    )
    weeks: int = Field(DEFAULT_WEEKS, ge=1, le=MAX_HORIZON)

    _no_bool = field_validator("store", mode="before")(_reject_bool)
    _start = field_validator("start", mode="before")(_plain_date)
    _one_name = model_validator(mode="before")(_one_name_for_the_first_week)


class StoreForecastParams(StoreForecastQuery):
    """The API's query string of GET /stores/<store>/forecast: an unknown parameter is an error."""

    model_config = ConfigDict(extra="forbid")


class TotalForecastQuery(BaseModel):
    """The chain's total: start and weeks (the page's form: other parameters are ignored)."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    start: dt.date | None = Field(
        None, validation_alias=AliasChoices("date", "start"), description=FIRST_WEEK_DESCRIPTION
    )
    weeks: int = Field(DEFAULT_WEEKS, ge=1, le=MAX_HORIZON)

    _start = field_validator("start", mode="before")(_plain_date)
    _one_name = model_validator(mode="before")(_one_name_for_the_first_week)


class DepartmentTotalQuery(TotalForecastQuery):
    """A department's total across stores: the department, start and weeks."""

    dept: DeptNumber

    _no_bool = field_validator("dept", mode="before")(_reject_bool)


class TotalForecastParams(TotalForecastQuery):
    """The API's query string of GET /chain/forecast: an unknown parameter is an error."""

    model_config = ConfigDict(extra="forbid")


class DepartmentTotalParams(DepartmentTotalQuery):
    """The API's query string of GET /departments/<dept>/forecast: an unknown parameter is an error."""

    model_config = ConfigDict(extra="forbid")


class BatchQuery(QuantileLevels):
    """The query string of POST /predict/batch."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["json", "csv"] | None = Field(
        None, description="`csv` answers with the predictions as a CSV file (as `Accept: text/csv` does)"
    )
    quantiles: list[Quantile] | None = Field(
        None,
        min_length=1,
        max_length=99,
        description=(
            "comma-separated levels (e.g. 0.1,0.5,0.9), for a CSV body or as the JSON body's `quantiles`: "
            "each prediction carries them (the CSV: a q0.1, q0.5, q0.9 column each)"
        ),
    )


class RunCsvQuery(QuantileLevels):
    """The query string of a published run's CSV."""

    model_config = ConfigDict(extra="forbid")

    quantiles: list[Quantile] | None = Field(
        None,
        min_length=1,
        max_length=99,
        description=(
            f"comma-separated levels in {QUANTILE_RANGE[0]}..{QUANTILE_RANGE[1]} (e.g. 0.1,0.5,0.9): a q0.1, "
            "q0.5, q0.9 column each, read from every row's stored bands with the interval shape of the model "
            "that published the run (0.1 and 0.9 are the 80% band's ends, 0.5 the forecast)"
        ),
    )


class ListQuery(BaseModel):
    """How many of the newest to list."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=500)


class RunsQuery(ListQuery):
    type: Literal["train", "backtest", "experiment"] | None = Field(
        None, description="only runs of this type"
    )


class AccuracyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weeks: int | None = Field(
        None, ge=1, le=520, description="only the weeks after data_through minus this many weeks"
    )


ROWS = TypeAdapter(list[PredictRequest])


class AdminActionRequest(BaseModel):
    """The optional JSON body of promote, rollback and archive (an empty body is the same as `{}`)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="why; recorded in the stage history")
    by: str | None = Field(
        None,
        max_length=40,
        description="who asks (unverified: recorded in brackets after `admin-token`)",
    )
    force: bool = Field(
        False,
        strict=True,
        description=(
            "promote only: promote even when the version scores worse than production on the same "
            "weeks (without it such a promotion is refused with 409, saying by how much and on which weeks)"
        ),
    )


class AlertActionRequest(BaseModel):
    """The optional JSON body of acknowledging or resolving an alert."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(
        None, max_length=40, description="who (unverified: recorded in brackets after `admin-token`)"
    )


def _a_friday(value: dt.date) -> dt.date:
    # Actual sales are stored by the week's end: another day is a typo, not "its week" (as in /predict).
    if value.weekday() != 4:
        raise ValueError(f"{value} is a {value.strftime('%A')}, not a Friday")
    return value


class ActualRow(BaseModel):
    """One week of actual sales in a JSON import: validated here and, in the same answer, by the one check
    of app.monitoring.actuals (stores, departments and weeks of the served model's data, implausible sales,
    repeated rows), then against what is stored (a changed stored week needs correct=true).
    train.csv's column names are accepted too; other keys are ignored."""

    model_config = ConfigDict(allow_inf_nan=False, validate_by_name=True, validate_by_alias=True)

    store: int = Field(
        ge=1,
        le=2**31 - 1,
        validation_alias=AliasChoices("store", "Store"),
        description="also accepted as `Store`; a numeric string is accepted too",
    )
    dept: int = Field(
        ge=1,
        le=2**31 - 1,
        validation_alias=AliasChoices("dept", "Dept"),
        description="also accepted as `Dept`",
    )
    date: dt.date = Field(
        validation_alias=AliasChoices("date", "week", "Date"),
        description="the week's Friday, YYYY-MM-DD; also accepted as `week` or `Date`",
    )
    weekly_sales: float = Field(
        validation_alias=AliasChoices("weekly_sales", "sales", "Weekly_Sales"),
        description="also accepted as `sales` or `Weekly_Sales`",
    )
    is_holiday: bool | None = Field(
        None,
        validation_alias=AliasChoices("is_holiday", "IsHoliday"),
        description=(
            "also accepted as `IsHoliday` (or the text TRUE/FALSE); left out, it comes from the holiday "
            "calendar; null is false"
        ),
    )

    _no_bool = field_validator("store", "dept", "weekly_sales", mode="before")(_reject_bool)
    _date = field_validator("date", mode="before")(_plain_date)
    _friday = field_validator("date")(_a_friday)


class ActualsRequest(BaseModel):
    """The JSON body of POST /actuals (a bare list of rows is read as {"rows": [...]})."""

    rows: list[ActualRow] = Field(min_length=1, description="unique by store, dept and date")


class ActualsQuery(BaseModel):
    """How POST /actuals treats rows that would change stored weeks."""

    model_config = ConfigDict(extra="forbid")

    correct: bool = Field(
        False, description="change stored weeks on purpose: each change is recorded (old, new, who, when)"
    )
    reason: str | None = Field(
        None, max_length=1000, description="why stored weeks change; required with correct=true"
    )
    by: str | None = Field(
        None, max_length=40, description="who (unverified: recorded in brackets after `admin-token`)"
    )


def input_features() -> list[dict[str, Any]]:
    """The request fields with types and valid ranges, straight from PredictRequest's JSON schema."""
    schema = PredictRequest.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        typed = next((o for o in options if o.get("type") != "null"), prop)
        type_name = typed.get("format") or typed.get("type", "any")
        out.append(
            {
                "name": name,
                "label": str(prop.get("title") or name),
                "kind": "input",
                "type": type_name,
                "description": prop.get("description", ""),
                "minimum": typed.get("minimum"),
                "maximum": typed.get("maximum"),
                "required": name in required,
                "importance": None,
            }
        )
    return out
