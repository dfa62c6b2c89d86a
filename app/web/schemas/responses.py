"""Response models: views build their answers as plain dicts; these models validate and write them
(app/web/api/openapi.py's serialise), so an answer holds exactly what its model documents.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.forecasting.explain import COMPONENT_DESCRIPTIONS


class ErrorDetail(BaseModel):
    field: str = Field(
        description="the offending field: `date`, `rows[3].store`, `covariates[0].cpi`, `body`"
    )
    message: str
    row: int | None = Field(None, description="batch only: 0-based index of the bad row")
    line: int | None = Field(None, description="CSV batch only: line number in the file (header is line 1)")


class ErrorResponse(BaseModel):
    error: str
    details: list[ErrorDetail]


class Components(BaseModel):
    """Why this number: dollar parts of a prediction that add up to it exactly (to the cent; `model`, the
    last, absorbs the rounding). A cold start's estimate is all `model`."""

    last_year: float = Field(description=f"{COMPONENT_DESCRIPTIONS['last_year']} ($)")
    trend: float = Field(description=f"{COMPONENT_DESCRIPTIONS['trend']} ($)")
    holiday: float = Field(description=f"{COMPONENT_DESCRIPTIONS['holiday']} ($)")
    covariates: float = Field(description=f"{COMPONENT_DESCRIPTIONS['covariates']} ($)")
    model: float = Field(description=f"{COMPONENT_DESCRIPTIONS['model']} ($)")


class PredictionOut(BaseModel):
    store: int
    dept: int
    week: dt.date = Field(description="the week's Friday")
    horizon: int = Field(description="weeks after data_through, the last week of known sales (1-52)")
    data_through: dt.date | None = Field(
        default=None, description="the last week of known sales the forecast used (the rolling origin)"
    )
    prediction: float = Field(description="point forecast of weekly sales ($)")
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    inputs: dict[str, Any] = Field(description="the covariates the model used")
    assumed: dict[str, str] = Field(description="covariate -> where its value came from when not given")
    cold_start: bool = Field(description="no sales history for this store-department: a fallback estimate")
    warning: str | None = Field(
        None, description="with a cold start only: what the estimate rests on (absent otherwise)"
    )
    model_version: str
    prediction_id: str = Field(description="id of this prediction in the prediction log")
    components: Components | None = Field(
        None, description="with `explain`: the prediction's additive parts, in this order"
    )
    last_year_week: dt.date | None = Field(
        None, description="with `explain`: the week a year before that the model reads (holiday-aligned)"
    )
    last_year_sales: float | None = Field(
        None, description="with `explain`: actual sales of that week (null: the series has none)"
    )
    quantiles: dict[str, float] | None = Field(
        None,
        description=(
            'with `quantiles`: each level\'s quantile ("q0.9": sales the week stays under with probability '
            "0.9), rising with the level"
        ),
    )


class PredictResponse(PredictionOut):
    request_id: str


class BatchResponse(BaseModel):
    model_version: str
    request_id: str
    count: int
    warning: str | None = Field(
        None, description="present when some rows are cold-start estimates: how many (each says so too)"
    )
    predictions: list[PredictionOut]


class ForecastResponse(BaseModel):
    model_version: str
    request_id: str
    store: int
    dept: int
    start: dt.date = Field(description="the first week forecast: the request's `date` (its Friday)")
    weeks: int
    predictions: list[PredictionOut]
    warning: str | None = Field(
        None,
        description="present when the store-department has no sales history: what the estimate rests on",
    )


class WeekTotal(BaseModel):
    week: dt.date
    horizon: int
    prediction: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class DepartmentForecast(BaseModel):
    dept: int
    rank: int = Field(description="1 = the largest forecast total over the weeks")
    total: float = Field(description="sum of the weekly forecasts")
    predictions: list[PredictionOut]


class StoreForecastResponse(BaseModel):
    model_version: str
    request_id: str
    store: int
    start: dt.date
    weeks: int
    total: list[WeekTotal] = Field(description="the store total per week")
    departments: list[DepartmentForecast] = Field(description="ranked by forecast total, largest first")


class TotalWeek(WeekTotal):
    level: str = Field(description="`chain` or `department`")
    dept: int | None = Field(None, description="the department (absent for the chain)")
    data_through: dt.date | None = Field(None, description="the last week of known sales the forecast used")


class DepartmentShare(BaseModel):
    dept: int
    rank: int = Field(description="1 = the largest forecast total over the weeks")
    total: float = Field(description="the department's forecast summed over the stores and weeks ($)")
    share: float = Field(description="its share of the chain's total over the weeks")


class StoreShare(BaseModel):
    store: int
    rank: int = Field(description="1 = the largest forecast total over the weeks")
    total: float = Field(description="the store's forecast of the department summed over the weeks ($)")
    share: float = Field(description="its share of the department's total over the weeks")


class _TotalForecast(BaseModel):
    model_version: str
    request_id: str
    start: dt.date = Field(description="the first week forecast")
    weeks: int
    data_through: dt.date | None = Field(None, description="the last week of known sales the forecast used")
    total: float = Field(description="the total over all the weeks ($)")
    predictions: list[TotalWeek] = Field(
        description="one per week: the sum of the series' forecasts (to the cent), with intervals "
        "calibrated on past totals of the same level"
    )


class ChainForecastResponse(_TotalForecast):
    departments: list[DepartmentShare] = Field(description="ranked by forecast total, largest first")


class DepartmentTotalResponse(_TotalForecast):
    dept: int
    stores: list[StoreShare] = Field(description="ranked by forecast total, largest first")


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str = Field(description="`ready` or `unavailable`")
    model_loaded: bool
    database: bool
    model_version: str | None = Field(None, description="the version this worker serves")
    production_version: str | None = Field(None, description="the registry's production version")
    detail: str | None = None


class FeatureImportance(BaseModel):
    feature: str
    label: str = Field(description="the feature's plain name, as the pages show it")
    importance: float


class ModelResponse(BaseModel):
    model_version: str
    kind: str
    params: dict[str, Any]
    origin: dt.date | None = Field(description="the last week of history the model knows")
    training: dict[str, Any] = Field(description="training window and data statistics")
    backtest: dict[str, Any] = Field(description="WMAE and coverage vs the seasonal-naive baseline")
    feature_importances: list[FeatureImportance]
    backtest_scores: dict[str, Any] = Field(
        description="the backtest's interval coverage and proper scores, `overall` and `by_bucket` (weeks "
        "ahead): coverage_80/95, interval_score_80/95 (the range's width plus a penalty for each miss, $; "
        "lower is better) and wql_0.1/0.5/0.9 (weighted quantile loss of the range's low end, the forecast "
        "and its high end; lower is better); null where the model's metadata does not hold them"
    )


class FeatureDescription(BaseModel):
    name: str
    label: str = Field(description="the feature's plain name, as the pages show it")
    kind: str = Field(description="`input`: a request field; `model`: a feature the model computes")
    type: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    importance: float | None = None


class FeaturesResponse(BaseModel):
    model_version: str
    inputs: list[FeatureDescription]
    features: list[FeatureDescription]


class AlertOut(BaseModel):
    id: int
    kind: str
    severity: str = Field(description="`info`, `warning` or `critical`")
    message: str
    store: int | None
    dept: int | None
    opened_at: str | None = Field(description="ISO 8601, UTC, seconds")
    acknowledged_at: str | None
    acknowledged_by: str | None = Field(description="`admin-token`, with the name given in brackets")
    resolved_at: str | None
    resolved_by: str | None = Field(description="`admin-token` (name), or null when it closed by itself")
    url: str | None = Field(
        default=None, description="the page of the store, series or department it is about"
    )


class ModelVersionOut(BaseModel):
    name: str
    version: int
    label: str = Field(description="`v` and the version number")
    stage: str = Field(description="`staging`, `production` or `archived`")
    model_kind: str
    run_id: int | None = Field(description="the training run that made it")
    artifact_path: str
    artifact_sha256: str
    created_at: str | None = Field(description="ISO 8601, UTC, seconds")
    metrics: dict[str, Any] = Field(description="the backtest summary")
    wmae: float | None = Field(description="the backtest WMAE")
    data_source: str | None = Field(description="the data it was trained on (directory or synthetic)")
    data_lineage: str | None = Field(
        description="16 hex characters naming that data (stores and covariates); actual sales are "
        "scored only against versions of their lineage; null: registered before lineages were recorded"
    )


class StageChangeOut(BaseModel):
    id: int
    version: int
    label: str
    from_stage: str | None = Field(description="null when the version was registered")
    to_stage: str
    changed_at: str | None = Field(description="ISO 8601, UTC, seconds")
    changed_by: str
    reason: str


class ModelVersionDetail(ModelVersionOut):
    history: list[StageChangeOut] = Field(description="stage changes, newest first")
    comparison: str | None = Field(
        default=None,
        description="promote only: the version against the production it replaced, on the same weeks",
    )


class ModelsResponse(BaseModel):
    name: str
    production: str | None = Field(description="label of the production version")
    serving: str | None = Field(description="the version this worker serves")
    versions: list[ModelVersionOut] = Field(description="newest first")
    history: list[StageChangeOut] = Field(description="every stage change, newest first")


class RunOut(BaseModel):
    id: int
    run_type: str = Field(description="`train`, `backtest` or `experiment`")
    model_kind: str
    status: str = Field(description="`running`, `finished` or `failed`")
    params: dict[str, Any]
    data_source: str | None
    data_fingerprint: str | None
    data_start: str | None = Field(description="first week of the data (YYYY-MM-DD)")
    data_end: str | None = Field(description="last week of the data (YYYY-MM-DD)")
    metrics: dict[str, Any]
    started_at: str | None = Field(description="ISO 8601, UTC, seconds")
    finished_at: str | None
    duration_s: float | None
    artifact_path: str | None
    artifact_sha256: str | None
    code_version: str | None
    error: str | None


class RunsResponse(BaseModel):
    runs: list[RunOut] = Field(description="newest first")


class ActualsResponse(BaseModel):
    received: int = Field(description="rows in the request")
    inserted: int
    updated: int = Field(
        description=(
            "rows whose data lineage (the production model's) was re-tagged, or whose stored sales or "
            "holiday flag a correction (correct=true) changed"
        )
    )
    unchanged: int = Field(description="rows equal to the stored ones (re-imports change nothing)")


class ForecastRunOut(BaseModel):
    id: int
    created_at: str = Field(description="ISO 8601, UTC, seconds")
    model_version: str
    data_through: dt.date = Field(description="the last week of known sales the run forecast from")
    lineage: str | None = Field(description="the dataset lineage of the model that made it")
    horizon: int = Field(description="weeks ahead of data_through, for every series")
    series: int
    rows: int
    seconds: float = Field(description="time to compute and store the run")


class ForecastRunsResponse(BaseModel):
    runs: list[ForecastRunOut] = Field(description="newest first")


class PublishedForecastOut(BaseModel):
    week: dt.date = Field(description="the week's Friday")
    lag: int = Field(description="weeks after the run's data_through (1-52)")
    prediction: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class SeriesForecastResponse(BaseModel):
    run: ForecastRunOut
    store: int
    dept: int
    forecasts: list[PublishedForecastOut] = Field(description="by week")


class LagBucketAccuracy(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    bucket: str = Field(description="weeks ahead: `1`, `2-4`, `5-13`, `14-26` or `27-52`")
    rows: int = Field(description="published forecasts scored against actual sales")
    wmae: float | None = Field(description="live WMAE (holiday weeks weigh 5)")
    naive_wmae: float | None = Field(description="the seasonal naive's WMAE on the same rows")
    value_added: float | None = Field(description="1 - wmae / naive_wmae: above 0, better than naive")
    bias: float | None = Field(description="mean of forecast - actual ($)")
    bias_pct: float | None = Field(description="sum of forecast - actual over sum of |actual|")
    coverage_80: float | None = Field(description="share of actuals inside the 80% interval")
    coverage_95: float | None
    backtest_wmae: float | None = Field(description="the model's own backtest WMAE for this lag bucket")
    backtest_naive_wmae: float | None
    backtest_coverage_80: float | None
    backtest_coverage_95: float | None
    ratio_to_backtest: float | None = Field(description="wmae / backtest_wmae")
    interval_score_80: float | None = Field(
        description="mean interval score of the 80% interval ($): its width plus 10x the distance of an "
        "actual outside it; lower is better (null before any week kept it)"
    )
    interval_score_95: float | None = Field(
        description="the same for the 95% interval (40x the distance of a miss)"
    )
    wql_0_1: float | None = Field(
        alias="wql_0.1",
        description="weighted quantile loss of the 0.1 quantile (the 80% interval's lower end): 2 x the "
        "summed pinball loss over the summed |actual|; lower is better",
    )
    wql_0_5: float | None = Field(alias="wql_0.5", description="the same for the forecast (the median)")
    wql_0_9: float | None = Field(
        alias="wql_0.9", description="the same for the 0.9 quantile (the 80% interval's upper end)"
    )
    backtest_interval_score_80: float | None = Field(description="the backtest's, for this lag bucket")
    backtest_interval_score_95: float | None
    backtest_wql_0_1: float | None = Field(alias="backtest_wql_0.1")
    backtest_wql_0_5: float | None = Field(alias="backtest_wql_0.5")
    backtest_wql_0_9: float | None = Field(alias="backtest_wql_0.9")


class LevelLagAccuracy(BaseModel):
    bucket: str = Field(description="weeks ahead: `1`, `2-4`, `5-13`, `14-26` or `27-52`")
    rows: int = Field(description="forecasts (series) or totals (store, department, chain) scored")
    wmae: float | None = Field(description="live WMAE (holiday weeks weigh 5)")
    naive_wmae: float | None = Field(description="the seasonal naive's WMAE on the same forecasts or totals")
    value_added: float | None = Field(description="1 - wmae / naive_wmae: above 0, better than naive")
    bias_pct: float | None = Field(description="sum of forecast - actual over sum of |actual|")
    coverage_80: float | None = Field(description="share of actuals inside the 80% range")
    coverage_95: float | None = Field(description="share of actuals inside the 95% range")
    interval_score_80: float | None = Field(
        None, description="mean interval score of the 80% range: its width plus 10x each miss outside it"
    )
    interval_score_95: float | None = Field(
        None, description="mean interval score of the 95% range: its width plus 40x each miss outside it"
    )


class LevelAccuracy(LevelLagAccuracy):
    bucket: str | None = Field(None, description="null: every lag pooled")
    level: str = Field(description="`series`, `store`, `department` (across stores) or `chain`")
    name: str = Field(description="the level in a planner's words")
    what: str = Field(description="what each figure of this level is scored on")
    by_lag: list[LevelLagAccuracy] = Field(description="the same figures per lag bucket scored")


class AccuracyResponse(BaseModel):
    model_version: str
    lineage: str | None = Field(description="only forecasts and actuals of this dataset lineage are scored")
    data_through: dt.date = Field(description="the last week of known sales the model serves from")
    since: dt.date | None = Field(description="scored weeks after this one (null: all of them)")
    buckets: list[LagBucketAccuracy] = Field(description="every lag bucket, shortest first")
    levels: list[LevelAccuracy] = Field(
        description=(
            "every level of the chain (series, store, department across stores, chain): published forecasts "
            "added up per week and run, against the actual totals and the serving model's ranges for them"
        )
    )
