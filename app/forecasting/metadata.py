"""What an artifact says about its model: one typed structure, written by train() (and completed by
artifacts.write_artifact), read under these names by the model card, the registry, drift and the loop.

Dates are ISO strings (weeks by their Friday); money is dollars of weekly sales.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class FeatureInfo(TypedDict):
    """One feature the model computes, with the range it saw in training (None: never finite)."""

    name: str
    type: str
    description: str
    min: float | None
    max: float | None
    nullable: bool


class TrainingWindow(TypedDict):
    start: str  # first week of sales
    end: str  # last week of sales the model learned from (its origin)
    rows: int  # sales rows in the window
    series: int  # store-departments
    training_series: int  # of which the training set was built from (FeatureConfig.max_series)
    training_rows: int  # rows of the training set (sampled from every origin's targets)


# A horizon bucket's figures; with intervals, coverage and the proper scores (scores.band_scores):
# interval scores of the 80% and 95% bands, wQL of the 0.1 / 0.5 / 0.9 quantiles (keys with a dot,
# hence the functional form).
BucketFigures = TypedDict(
    "BucketFigures",
    {
        "rows": int,
        "wmae": float,
        "coverage_80": NotRequired[float],
        "coverage_95": NotRequired[float],
        "interval_score_80": NotRequired[float],
        "interval_score_95": NotRequired[float],
        "wql_0.1": NotRequired[float],
        "wql_0.5": NotRequired[float],
        "wql_0.9": NotRequired[float],
    },
)


class Backtest(TypedDict):
    """The internal backtest: a model fitted up to `origin` forecasts the `horizon` weeks after it."""

    origin: str
    horizon: int
    rows: int
    wmae: float
    mae: float
    baseline_wmae: float  # the seasonal naive on the same rows
    ratio_to_baseline: float
    coverage_80: float
    coverage_95: float
    by_bucket: dict[str, BucketFigures]  # horizon buckets of the intervals ("1-4", ..., "40-52")
    baseline_by_bucket: dict[str, BucketFigures]
    by_lag_bucket: dict[str, BucketFigures]  # the loop's lag buckets, pooled over the backtest origins
    baseline_by_lag_bucket: dict[str, BucketFigures]
    lag_bucket_origins: int
    # scores.grouped_scores: coverage, interval scores and wQL, overall, per lag bucket and per quarter
    # of series by volatility and by size
    scores: dict[str, Any]
    note: str


class ModelMetadata(TypedDict):
    kind: str  # estimators.KINDS
    params: dict[str, Any]  # the pipeline's and the estimator's parameters
    features: list[FeatureInfo]
    covariates: list[str]
    training_window: TrainingWindow
    origin: str  # the last week of sales the model saw
    valid_range: list[str]  # [first, last] week it can forecast
    data_source: str
    data_fingerprint: str
    data_lineage: str
    backtest: Backtest | dict[str, Any]  # {} when the history is too short for one
    intervals: dict[str, Any]  # IntervalCalibrator.to_dict()
    residual_quantiles: dict[str, dict[str, float]]
    feature_importances: dict[str, float]  # permutation importance, by feature
    reference: dict[str, Any]  # the drift reference (reference.py, one FORMAT)
    train_seconds: float
    created: str  # UTC timestamp
    # written with the artifact
    artifact: NotRequired[str]  # the joblib file's name
    artifact_sha256: NotRequired[str]
    library_versions: NotRequired[dict[str, str]]
    artifact_bytes: NotRequired[int]
    format: NotRequired[int]
    version: NotRequired[str]  # set on a Forecaster rolled forward (with_history)
