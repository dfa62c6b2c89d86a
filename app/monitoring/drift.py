"""Drift tests: a window of logged inputs (and predictions) against the reference saved with the model.

Pure functions over arrays and dicts: no Flask, no database. Per feature the test follows the type
and the size of the current sample:

- numeric, at most SMALL_SAMPLE_MAX rows: two-sample Kolmogorov-Smirnov, drift when p < p_value;
- categorical, at most SMALL_SAMPLE_MAX rows: chi-squared on the reference and current counts;
- beyond that (p-values of large samples flag differences too small to matter): the Wasserstein
  distance normalised by the reference's standard deviation (numeric) or the Jensen-Shannon
  distance, base 2 (categorical), drift when above distance_threshold.

PSI (10 reference-quantile bins) is reported alongside, never decides. The dataset drifts when at
least `share_for_dataset` of the tested features drift. Thresholds were checked by simulation
(tests/monitoring/test_drift.py): samples drawn like the reference flag dataset drift in well
under 5% of windows.

Reference format (JSON-safe, stored in the model's metadata under "reference"):
    {"features": {name: {"kind": "numeric", "sample": [floats <= 2000], "n": int, "missing_share": float}
                  | {"kind": "categorical", "counts": {category: int}, "n": int, "missing_share": float}},
     "prediction": {"kind": "numeric", "sample": [...], ...}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from app.forecasting.data import COVARIATE_COLUMNS

SMALL_SAMPLE_MAX = 1000
REFERENCE_SAMPLE_SIZE = 2000
MIN_ROWS = 10  # fewer current values than this: not tested
PSI_BINS = 10
CHART_BINS = 20
PSI_EPSILON = 1e-4

NUMERIC_FEATURES = tuple(COVARIATE_COLUMNS)
CATEGORICAL_FEATURES = ("is_holiday",)
PREDICTION = "prediction"


@dataclass
class DriftSettings:
    p_value: float = 0.01
    distance_threshold: float = 0.1
    share_for_dataset: float = 0.5
    small_sample_max: int = SMALL_SAMPLE_MAX

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DriftSettings:
        return cls(
            p_value=float(config.get("DRIFT_P_VALUE", 0.01)),
            distance_threshold=float(config.get("DRIFT_DISTANCE_THRESHOLD", 0.1)),
            share_for_dataset=float(config.get("DRIFT_SHARE_FOR_DATASET", 0.5)),
        )


@dataclass
class FeatureDrift:
    """The outcome of one feature's test; `details` carries the histograms the page draws."""

    feature: str
    kind: str
    test: str  # ks, chi2, wasserstein, jensen_shannon, none
    statistic: float
    p_value: float | None
    threshold: float
    psi: float | None
    drifted: bool
    sample_size: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftOutcome:
    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    rows: int
    features_tested: int
    features_drifted: int
    dataset_drift: bool


# Reference distributions


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _numeric(values: Iterable[Any]) -> np.ndarray:
    array = pd.to_numeric(
        pd.Series(list(values) if not isinstance(values, pd.Series) else values), errors="coerce"
    )
    array = array.to_numpy(dtype="float64")
    return array[np.isfinite(array)]


def numeric_reference(values: Iterable[Any], sample_size: int = REFERENCE_SAMPLE_SIZE, seed: int = 0) -> dict:
    raw = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    finite = raw[np.isfinite(raw)]
    rng = np.random.default_rng(seed)
    sample = rng.choice(finite, size=sample_size, replace=False) if len(finite) > sample_size else finite
    return {
        "kind": "numeric",
        "sample": [float(v) for v in np.sort(sample)],
        "n": int(len(finite)),
        "missing_share": float(1 - len(finite) / len(raw)) if len(raw) else 0.0,
    }


def categorical_reference(values: Iterable[Any]) -> dict:
    categories = [_category(v) for v in values]
    present = [c for c in categories if c is not None]
    counts = pd.Series(present, dtype="object").value_counts()
    return {
        "kind": "categorical",
        "counts": {str(k): int(v) for k, v in counts.items()},
        "n": len(present),
        "missing_share": float(1 - len(present) / len(categories)) if categories else 0.0,
    }


def build_reference(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str] = NUMERIC_FEATURES,
    categorical: Sequence[str] = CATEGORICAL_FEATURES,
    target: str | None = None,
    sample_size: int = REFERENCE_SAMPLE_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """Reference distributions of a training frame's columns (and of its target, for the predictions)."""
    features: dict[str, Any] = {}
    for i, name in enumerate(numeric):
        if name in frame.columns:
            features[name] = numeric_reference(frame[name], sample_size, seed + i)
    for name in categorical:
        if name in frame.columns:
            features[name] = categorical_reference(frame[name])
    reference: dict[str, Any] = {"features": features}
    if target and target in frame.columns:
        reference[PREDICTION] = numeric_reference(frame[target], sample_size, seed + 101)
    return reference


def reference_from_dataset(dataset: Any, *, sample_size: int = REFERENCE_SAMPLE_SIZE, seed: int = 0) -> dict:
    """The reference for a model trained on `dataset`: covariates as the training rows see them.

    Sales rows are joined to their store-week covariates, so a store weighs as much as its
    departments do, as it does in the prediction log. Weekly sales stand in for the predictions.
    The core may call this at training time and keep the result in metadata["reference"].
    """
    sales = dataset.sales[["store", "date", "weekly_sales", "is_holiday"]]
    covariates = dataset.features.drop(columns=["is_holiday"], errors="ignore")
    frame = sales.merge(covariates, on=["store", "date"], how="left")
    return build_reference(frame, target="weekly_sales", sample_size=sample_size, seed=seed)


def normalize_reference(reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """Accept the reference as this module writes it, or a flat {feature: entry} mapping.

    An entry may give a raw `sample`/`values` list or a `histogram` ({"edges", "counts"}) for
    numeric features, `counts` or `shares` for categorical ones.
    """
    if not reference:
        return {"features": {}}
    features_in = reference.get("features", {k: v for k, v in reference.items() if k != PREDICTION})
    out: dict[str, Any] = {"features": {}}
    for name, entry in dict(features_in).items():
        normalized = _normalize_entry(entry)
        if normalized is not None:
            out["features"][name] = normalized
    if PREDICTION in reference:
        normalized = _normalize_entry(reference[PREDICTION])
        if normalized is not None:
            out[PREDICTION] = normalized
    return out


def _normalize_entry(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping):
        return None
    if "sample" in entry or "values" in entry:
        sample = _numeric(entry.get("sample", entry.get("values")) or [])
        return {**entry, "kind": "numeric", "sample": sample.tolist(), "n": int(entry.get("n", len(sample)))}
    if "histogram" in entry or ("edges" in entry and "counts" in entry):
        histogram = entry.get("histogram", entry)
        edges = np.asarray(histogram["edges"], dtype="float64")
        counts = np.asarray(histogram["counts"], dtype="float64")
        # Rebuild a sample from the histogram: bin midpoints repeated in proportion (at most 2000 values).
        mids = (edges[:-1] + edges[1:]) / 2
        repeats = np.round(counts / max(counts.sum(), 1) * REFERENCE_SAMPLE_SIZE).astype(int)
        return {"kind": "numeric", "sample": np.repeat(mids, repeats).tolist(), "n": int(counts.sum())}
    if "counts" in entry or "shares" in entry:
        counts = entry.get("counts") or {k: round(v * 1000) for k, v in entry["shares"].items()}
        counts = {_category(k) if _category(k) is not None else str(k): int(v) for k, v in counts.items()}
        if set(counts) <= {"0", "1"}:  # a boolean counted as 0/1 (the core's reference): logged as true/false
            counts = {"true" if k == "1" else "false": v for k, v in counts.items()}
        return {"kind": "categorical", "counts": counts, "n": int(sum(counts.values()))}
    return None


# Tests


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float | None:
    """Population stability index over the reference's quantile bins."""
    if len(reference) == 0 or len(current) == 0:
        return None
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.all(current == reference[0]) else None
    edges[0], edges[-1] = -np.inf, np.inf
    ref_share = np.histogram(reference, edges)[0] / len(reference)
    cur_share = np.histogram(current, edges)[0] / len(current)
    return _psi_shares(ref_share, cur_share)


def _psi_shares(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    ref_share = np.clip(ref_share, PSI_EPSILON, None)
    cur_share = np.clip(cur_share, PSI_EPSILON, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _chart_histogram(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Shared bins over both samples (0.5-99.5% range) for the reference-vs-current chart."""
    both = np.concatenate([reference, current])
    low, high = np.quantile(both, [0.005, 0.995])
    if not high > low:
        low, high = float(both.min()) - 0.5, float(both.max()) + 0.5
    edges = np.linspace(low, high, CHART_BINS + 1)
    ref = np.histogram(np.clip(reference, low, high), edges)[0] / max(len(reference), 1)
    cur = np.histogram(np.clip(current, low, high), edges)[0] / max(len(current), 1)
    return {
        "edges": [round(float(e), 4) for e in edges],
        "reference": [round(float(v), 5) for v in ref],
        "current": [round(float(v), 5) for v in cur],
    }


def _not_tested(name: str, kind: str, n: int, threshold: float) -> FeatureDrift:
    return FeatureDrift(
        name, kind, "none", 0.0, None, threshold, None, False, n, {"status": "not enough data"}
    )


def check_numeric(
    name: str, reference: Mapping[str, Any], current: Iterable[Any], settings: DriftSettings
) -> FeatureDrift:
    ref = np.asarray(reference["sample"], dtype="float64")
    cur = _numeric(current)
    n = len(cur)
    if n < MIN_ROWS or len(ref) < MIN_ROWS:
        return _not_tested(name, "numeric", n, settings.p_value)
    details: dict[str, Any] = {
        "histogram": _chart_histogram(ref, cur),
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
        "reference_missing_share": reference.get("missing_share"),
    }
    if n <= settings.small_sample_max:
        result = stats.ks_2samp(ref, cur)
        statistic, p = float(result.statistic), float(result.pvalue)
        return FeatureDrift(
            name,
            "numeric",
            "ks",
            statistic,
            p,
            settings.p_value,
            psi(ref, cur),
            p < settings.p_value,
            n,
            details,
        )
    scale = float(ref.std())
    distance = float(stats.wasserstein_distance(ref, cur))
    statistic = distance / scale if scale > 0 else (0.0 if distance == 0 else math.inf)
    return FeatureDrift(
        name,
        "numeric",
        "wasserstein",
        statistic,
        None,
        settings.distance_threshold,
        psi(ref, cur),
        statistic > settings.distance_threshold,
        n,
        details,
    )


def check_categorical(
    name: str, reference: Mapping[str, Any], current: Iterable[Any], settings: DriftSettings
) -> FeatureDrift:
    ref_counts = {str(k): int(v) for k, v in reference["counts"].items()}
    cur_values = [c for c in (_category(v) for v in current) if c is not None]
    n = len(cur_values)
    if n < MIN_ROWS or sum(ref_counts.values()) < MIN_ROWS:
        return _not_tested(name, "categorical", n, settings.p_value)
    cur_counts = pd.Series(cur_values, dtype="object").value_counts().to_dict()
    categories = sorted(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(c, 0) for c in categories], dtype="float64")
    cur = np.array([cur_counts.get(c, 0) for c in categories], dtype="float64")
    ref_share, cur_share = ref / ref.sum(), cur / cur.sum()
    details = {
        "categories": categories,
        "reference": [round(float(v), 5) for v in ref_share],
        "current": [round(float(v), 5) for v in cur_share],
    }
    population = _psi_shares(ref_share, cur_share)
    if n <= settings.small_sample_max:
        if len(categories) < 2:
            statistic, p = 0.0, 1.0
        else:
            table = np.vstack([ref, cur])
            statistic, p = (float(x) for x in stats.chi2_contingency(table, correction=False)[:2])
        return FeatureDrift(
            name,
            "categorical",
            "chi2",
            statistic,
            p,
            settings.p_value,
            population,
            p < settings.p_value,
            n,
            details,
        )
    statistic = float(jensenshannon(ref_share, cur_share, base=2))
    return FeatureDrift(
        name,
        "categorical",
        "jensen_shannon",
        statistic,
        None,
        settings.distance_threshold,
        population,
        statistic > settings.distance_threshold,
        n,
        details,
    )


def check_feature(
    name: str, reference: Mapping[str, Any], current: Iterable[Any], settings: DriftSettings
) -> FeatureDrift:
    if reference.get("kind") == "categorical":
        return check_categorical(name, reference, current, settings)
    return check_numeric(name, reference, current, settings)


def compute_drift(
    reference: Mapping[str, Any],
    current: pd.DataFrame,
    settings: DriftSettings | None = None,
    predictions: Iterable[Any] | None = None,
) -> DriftOutcome:
    """Test every reference feature that `current` has a column for, then the predictions."""
    settings = settings or DriftSettings()
    reference = normalize_reference(reference)
    results = []
    for name, entry in reference["features"].items():
        if name in current.columns:  # the model's engineered features (lags, levels) are not logged inputs
            results.append(check_feature(name, entry, current[name], settings))
    tested = [r for r in results if r.test != "none"]
    drifted = sum(r.drifted for r in tested)
    prediction = None
    if predictions is not None and PREDICTION in reference:
        prediction = check_numeric(PREDICTION, reference[PREDICTION], predictions, settings)
    dataset_drift = bool(tested) and drifted / len(tested) >= settings.share_for_dataset
    return DriftOutcome(results, prediction, len(current), len(tested), drifted, dataset_drift)


def inputs_frame(inputs: Iterable[Mapping[str, Any] | str | None]) -> pd.DataFrame:
    """Logged `inputs` dicts (or their JSON text) as a frame, one column per covariate."""
    import json

    records = []
    for item in inputs:
        if item is None:
            records.append({})
        elif isinstance(item, str):
            records.append(json.loads(item))
        else:
            records.append(item)
    return pd.DataFrame.from_records(records)
