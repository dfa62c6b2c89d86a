"""Drift that means something: logged inputs against the same season, actual covariates against the assumed.

Pure functions over arrays and dicts: no Flask, no database. The reference is the one saved with the
model (app/forecasting/reference.py builds it from the training features table). Logged rows are first
reduced to distinct store-weeks (every department of a store-week carries the same covariates), then:

- seasonal features (temperature, markdowns): the anomaly from the store's same-season median, in
  store spreads, against the training anomalies. Drift needs a practical effect, the Wasserstein
  distance between the two above `effect_threshold` spreads, and, up to SMALL_SAMPLE_MAX store-weeks,
  a two-sample Kolmogorov-Smirnov p below `p_value` as well;
- trending features (fuel_price, cpi, unemployment): drift when more than `band_share` of the values
  lie outside the band the store's history allows (its range widened by its largest yearly moves per
  year of horizon), so values moving with the trend never alarm;
- is_holiday: observed holiday shares against the calendar's share of the same weeks of the year
  (chi-squared up to SMALL_SAMPLE_MAX, Jensen-Shannon distance above `distance_threshold` beyond).

Inputs drift as a dataset when at least `share_for_dataset` of the tested features drift, or when
one seasonal feature drifts by more than `severe_effect` spreads (every forecast assumes, say, 15
degrees more than the season has).
Ingested actual covariates are compared with what the model assumed for the same store-weeks (its
covariate grid): a store is off when its mean gap over the last `actual_weeks` weeks exceeds the
reference's tolerance (2 anomaly spreads; a factor 2 for markdowns; 1.5 yearly moves for trending
series); a feature is flagged when at least `min_stores` stores are off, and any flagged feature
makes the report a dataset drift (the model forecasts from covariates that turned out wrong).
PSI is reported alongside, never decides. tests/monitoring/test_drift.py measures all this on a
replay of 2012 (no alert) and on injected shifts (flagged).

Over 500 lines on purpose: the three kinds of feature above share one reference, one sampling and one
report, and read best side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from app.forecasting import calendar
from app.forecasting import reference as seasonal
from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.features import resolve_covariates

SMALL_SAMPLE_MAX = 1000
MIN_ROWS = 10  # fewer current values than this: not tested
PSI_BINS = 10
CHART_BINS = 20
PSI_EPSILON = 1e-4
ACTUAL_WEEKS = 4
ACTUAL_PREFIX = "actual:"

PREDICTION = "prediction"


@dataclass
class DriftSettings:
    p_value: float = 0.01
    distance_threshold: float = 0.1
    share_for_dataset: float = 0.5
    small_sample_max: int = SMALL_SAMPLE_MAX
    effect_threshold: float = 0.5  # Wasserstein distance between anomaly distributions, in store spreads
    band_share: float = 0.1
    actual_weeks: int = ACTUAL_WEEKS
    min_stores: int = 2
    severe_effect: float = 2.0  # one seasonal feature this many spreads off is a dataset drift by itself

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DriftSettings:
        return cls(
            p_value=float(config.get("DRIFT_P_VALUE", 0.01)),
            distance_threshold=float(config.get("DRIFT_DISTANCE_THRESHOLD", 0.1)),
            share_for_dataset=float(config.get("DRIFT_SHARE_FOR_DATASET", 0.5)),
            effect_threshold=float(config.get("DRIFT_EFFECT_THRESHOLD", 0.5)),
            band_share=float(config.get("DRIFT_BAND_SHARE", 0.1)),
            actual_weeks=int(config.get("DRIFT_ACTUAL_WEEKS", ACTUAL_WEEKS)),
            min_stores=int(config.get("DRIFT_MIN_STORES", 2)),
            severe_effect=float(config.get("DRIFT_SEVERE_EFFECT", 2.0)),
        )


@dataclass
class FeatureDrift:
    """The outcome of one feature's test; `details` carries the histograms the page draws."""

    feature: str
    kind: str
    test: str  # ks, wasserstein, band, chi2, jensen_shannon, assumed_gap, none
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
    actual_features: list[FeatureDrift] = field(default_factory=list)


# Reference


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


def reference_from_dataset(dataset: Any, *, seed: int = 0) -> dict[str, Any]:
    """The reference of a model trained on all of `dataset`'s sales (sales stand in for predictions)."""
    first = int(calendar.week_index(dataset.sales["date"]).min())
    origin = int(calendar.week_index(dataset.sales["date"]).max())
    last = max(
        origin, int(calendar.week_index(dataset.features["date"]).max()) if len(dataset.features) else 0
    )
    covariates = Covariates.build(dataset, first, last)
    return seasonal.build_reference(covariates, origin, dataset.sales["weekly_sales"].to_numpy(), seed)


def assumed_covariates(covariates: Covariates, stores: np.ndarray, weeks: np.ndarray) -> np.ndarray:
    """What the model assumed for (store, week) rows: its grid's values [n, C] in COVARIATE_COLUMNS order."""
    stores = np.asarray(stores, dtype=np.int64)
    return resolve_covariates(covariates, covariates.store_pos(stores), np.asarray(weeks, dtype=np.int64))[0]


def _weeks_of(frame: pd.DataFrame) -> np.ndarray | None:
    column = "week" if "week" in frame.columns else "date" if "date" in frame.columns else None
    if column is None:
        return None
    return np.asarray(calendar.week_index(pd.to_datetime(frame[column])), dtype=np.int64)


def _store_weeks(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per store-week (the covariates of a store-week are the same for all its departments)."""
    if "store" not in frame.columns or _weeks_of(frame) is None:
        return frame
    out = frame.assign(__week__=_weeks_of(frame), store=pd.to_numeric(frame["store"], errors="coerce"))
    out = out.dropna(subset=["store"]).astype({"store": "int64"})
    return out.drop_duplicates(["store", "__week__"]).reset_index(drop=True)


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


def check_seasonal(
    name: str, entry: Mapping[str, Any], anomalies: np.ndarray, settings: DriftSettings
) -> FeatureDrift:
    """Anomalies from the same season against the training anomalies: significant and large enough."""
    ref = np.asarray(entry["sample"], dtype="float64")
    cur = anomalies[np.isfinite(anomalies)]
    n = len(cur)
    if n < MIN_ROWS or len(ref) < MIN_ROWS:
        return _not_tested(name, "numeric", n, settings.effect_threshold)
    distance = float(stats.wasserstein_distance(ref, cur))
    details: dict[str, Any] = {
        "scale": "anomaly from the same weeks of the year, in store spreads",
        "histogram": _chart_histogram(ref, cur),
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
        "distance": distance,
    }
    if n <= settings.small_sample_max:
        result = stats.ks_2samp(ref, cur)
        p = float(result.pvalue)
        drifted = p < settings.p_value and distance > settings.effect_threshold
        return FeatureDrift(
            name,
            "numeric",
            "ks",
            float(result.statistic),
            p,
            settings.p_value,
            psi(ref, cur),
            drifted,
            n,
            details,
        )
    return FeatureDrift(
        name,
        "numeric",
        "wasserstein",
        distance,
        None,
        settings.effect_threshold,
        psi(ref, cur),
        distance > settings.effect_threshold,
        n,
        details,
    )


def check_trend(name: str, excess: np.ndarray, settings: DriftSettings) -> FeatureDrift:
    """The share of values outside the band the store's own history and trend allow."""
    cur = excess[np.isfinite(excess)]
    n = len(cur)
    if n < MIN_ROWS:
        return _not_tested(name, "numeric", n, settings.band_share)
    outside = cur > 0
    share = float(outside.mean())
    details = {
        "scale": "distance outside the store's trend band, in its largest yearly moves",
        "outside": int(outside.sum()),
        "mean_excess_outside": float(cur[outside].mean()) if outside.any() else 0.0,
    }
    return FeatureDrift(
        name,
        "numeric",
        "band",
        share,
        None,
        settings.band_share,
        None,
        share > settings.band_share,
        n,
        details,
    )


def check_holiday(
    name: str, entry: Mapping[str, Any], weeks: np.ndarray, current: Iterable[Any], settings: DriftSettings
) -> FeatureDrift:
    """Observed holiday flags against the calendar's share of the same weeks of the year."""
    flags = np.array([_category(v) for v in current], dtype=object)
    share = np.array([np.nan if v is None else v for v in entry["share"]], dtype="float64")
    expected_true = share[seasonal.week_of_year(weeks)]
    known = np.isfinite(expected_true) & (flags != None)  # noqa: E711 (elementwise over an object array)
    n = int(known.sum())
    if n < MIN_ROWS:
        return _not_tested(name, "categorical", n, settings.p_value)
    observed = np.array([np.sum(flags[known] == "false"), np.sum(flags[known] == "true")], dtype="float64")
    expected = np.array([n - expected_true[known].sum(), expected_true[known].sum()])
    cur_share, ref_share = observed / n, expected / n
    details = {
        "categories": ["false", "true"],
        "reference": [round(float(v), 5) for v in ref_share],
        "current": [round(float(v), 5) for v in cur_share],
        "scale": "expected from the holiday calendar of the same weeks of the year",
    }
    population = _psi_shares(ref_share, cur_share)
    if n <= settings.small_sample_max:
        used = expected > 0
        if observed[~used].sum() > 0:  # a holiday where the calendar never has one
            statistic, p = math.inf, 0.0
        elif used.sum() < 2:
            statistic, p = 0.0, 1.0
        else:
            statistic, p = (float(x) for x in stats.chisquare(observed[used], expected[used]))
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


def check_inputs(
    reference: Mapping[str, Any], current: pd.DataFrame, settings: DriftSettings
) -> list[FeatureDrift]:
    """Each reference feature that `current` (store, week or date, covariates) has a column for."""
    rows = _store_weeks(current)
    weeks = _weeks_of(rows)
    if weeks is None or "store" not in rows.columns:
        return [
            _not_tested(name, "numeric", 0, settings.effect_threshold)
            for name in reference.get("features", {})
            if name in current.columns
        ]
    pos = seasonal.store_positions(dict(reference), rows["store"].to_numpy(np.int64))
    origin = int(reference["origin_week"])
    results = []
    for name, entry in reference["features"].items():
        if name not in rows.columns:
            continue
        if entry["kind"] == "holiday":
            results.append(check_holiday(name, entry, weeks, rows[name], settings))
            continue
        values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype="float64")
        if entry["kind"] == "seasonal":
            results.append(
                check_seasonal(name, entry, seasonal.seasonal_anomaly(entry, pos, weeks, values), settings)
            )
        else:
            results.append(
                check_trend(name, seasonal.trend_excess(entry, pos, weeks, values, origin), settings)
            )
    return results


def compare_actuals(
    reference: Mapping[str, Any],
    actual: pd.DataFrame,
    covariates: Covariates,
    settings: DriftSettings | None = None,
) -> list[FeatureDrift]:
    """Ingested covariates (a features table's rows) against what the model assumed for the same store-weeks.

    Only the newest `actual_weeks` weeks count; a store is off when its mean gap exceeds the tolerance.
    """
    settings = settings or DriftSettings()
    if actual.empty:
        return []
    weeks = _weeks_of(actual)
    newest = int(weeks.max())
    recent = weeks > newest - settings.actual_weeks
    actual, weeks = actual[recent].reset_index(drop=True), weeks[recent]
    stores = actual["store"].to_numpy(np.int64)
    assumed = assumed_covariates(covariates, stores, weeks)
    pos = seasonal.store_positions(dict(reference), stores)
    results = []
    for j, name in enumerate(COVARIATE_COLUMNS):
        entry = reference["features"].get(name)
        if entry is None or name not in actual.columns:
            continue
        observed = pd.to_numeric(actual[name], errors="coerce").to_numpy(dtype="float64")
        log = bool(entry.get("log"))
        gap = (seasonal.slog(observed) - seasonal.slog(assumed[:, j])) if log else observed - assumed[:, j]
        ok = np.isfinite(gap) & (pos >= 0)
        label = ACTUAL_PREFIX + name
        if ok.sum() < 1:
            results.append(_not_tested(label, "numeric", 0, float(settings.min_stores)))
            continue
        tolerance = np.array([np.nan if v is None else v for v in entry["tolerance"]], dtype="float64")
        frame = pd.DataFrame({"store": stores[ok], "pos": pos[ok], "gap": gap[ok]})
        by_store = frame.groupby("store").agg(
            gap=("gap", "mean"), weeks=("gap", "size"), pos=("pos", "first")
        )
        by_store["tolerance"] = tolerance[by_store["pos"].to_numpy()]
        off = by_store[np.abs(by_store["gap"]) > by_store["tolerance"]]
        details = {
            "scale": "log ratio" if log else "difference",
            "weeks": [str(d.date()) for d in calendar.week_date(np.unique(weeks))],
            "stores_off": {
                str(s): {
                    "mean_gap": round(float(r.gap), 4),
                    "tolerance": round(float(r.tolerance), 4),
                    "weeks": int(r.weeks),
                }
                for s, r in off.iterrows()
            },
            "largest_gap_in_tolerances": float(np.nanmax(np.abs(by_store["gap"]) / by_store["tolerance"])),
        }
        results.append(
            FeatureDrift(
                label,
                "numeric",
                "assumed_gap",
                float(len(off)),
                None,
                float(settings.min_stores),
                None,
                len(off) >= settings.min_stores,
                int(ok.sum()),
                details,
            )
        )
    return results


def compute_drift(
    reference: Mapping[str, Any],
    current: pd.DataFrame,
    settings: DriftSettings | None = None,
    predictions: Iterable[Any] | None = None,
    *,
    actual: pd.DataFrame | None = None,
    covariates: Covariates | None = None,
) -> DriftOutcome:
    """Logged inputs (and predictions) against the reference; actual covariates against the assumed."""
    settings = settings or DriftSettings()
    if reference.get("format") != seasonal.FORMAT:
        raise ValueError(f"unknown drift reference format {reference.get('format')!r}; retrain the model")
    results = check_inputs(reference, current, settings) if len(current) else []
    tested = [r for r in results if r.test != "none"]
    drifted = sum(r.drifted for r in tested)
    prediction = None
    if predictions is not None and PREDICTION in reference:
        prediction = check_numeric(PREDICTION, reference[PREDICTION], predictions, settings)
    actual_results = []
    if actual is not None and covariates is not None and not actual.empty:
        actual_results = compare_actuals(reference, actual, covariates, settings)
    severe = any(r.drifted and r.details.get("distance", 0.0) > settings.severe_effect for r in tested)
    dataset_drift = (
        (bool(tested) and drifted / len(tested) >= settings.share_for_dataset)
        or severe
        or any(r.drifted for r in actual_results)
    )
    return DriftOutcome(
        results, prediction, len(current), len(tested), drifted, dataset_drift, actual_results
    )


def inputs_frame(inputs: Iterable[Mapping[str, Any] | str | None]) -> pd.DataFrame:
    """Logged `inputs` dicts (or their JSON text) as a frame, one column per covariate."""
    records = []
    for item in inputs:
        if item is None:
            records.append({})
        elif isinstance(item, str):
            records.append(json.loads(item))
        else:
            records.append(item)
    return pd.DataFrame.from_records(records)
