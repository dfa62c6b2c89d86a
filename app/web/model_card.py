"""The model card: what a model is, how it was trained and how well it backtested, from its metadata.

`model_card_context(forecaster_or_metadata)` is reused by the registry for every version
(/models/<version>): render it with `{% include card.card_template %}` and the dict as `card`.
Everything shown comes from the artifact's metadata; nothing is recomputed here.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting.features import FEATURES, feature_label
from app.forecasting.intervals import bucket_sort_key
from app.forecasting.metadata import ModelMetadata
from app.jsonable import jsonable
from app.web import charts, words
from app.web.admin_auth import path_name

log = logging.getLogger(__name__)

CARD_TEMPLATE = "partials/model_card.html"
BASELINE_LABEL = "Seasonal naive"
KIND_LABELS = {
    "hgb": "Gradient-boosted trees",
    "rf": "Random forest",
    "linear": "Linear (ridge)",
    "naive": "Seasonal naive",
}


def _metadata(source: Any) -> ModelMetadata:
    """The metadata of a Forecaster, or the metadata itself (a registry version's sidecar)."""
    if isinstance(source, Mapping):
        return dict(source)  # type: ignore[return-value]
    return dict(getattr(source, "metadata", None) or {})  # type: ignore[return-value]


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def feature_importances(meta: ModelMetadata) -> list[dict[str, Any]]:
    """[{feature, importance}] largest first."""
    items = [(name, _num(value)) for name, value in (meta.get("feature_importances") or {}).items()]
    items = [(name, value) for name, value in items if value is not None]
    items.sort(key=lambda kv: -kv[1])
    return [{"feature": name, "label": feature_label(name), "importance": value} for name, value in items]


def backtest_source(meta: ModelMetadata) -> tuple[dict[str, Any], dict[str, Any]]:
    """The figures per horizon bucket of a model's backtest (bucket_figures)."""
    return bucket_figures(meta.get("backtest") or {})


def bucket_figures(backtest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A backtest's figures per horizon bucket, model and seasonal naive: the lag buckets pooled over
    the backtest's origins (what monitoring holds live accuracy against), else, for a model trained
    before those existed, the buckets of its one origin. Every page shows these and no others."""
    if backtest.get("by_lag_bucket"):
        return backtest["by_lag_bucket"], backtest.get("baseline_by_lag_bucket") or {}
    return backtest.get("by_bucket") or {}, backtest.get("baseline_by_bucket") or {}


def backtest_line(meta: ModelMetadata) -> str | None:
    """Which backtest the figures come from, in words: its origin and the weeks it scored."""
    backtest = meta.get("backtest") or {}
    origin, horizon = backtest.get("origin"), backtest.get("horizon")
    if not origin:
        return None
    try:
        start = dt.date.fromisoformat(str(origin)[:10])
    except ValueError:
        return None
    weeks = int(_num(horizon) or 0)
    origins = int(_num(backtest.get("lag_bucket_origins")) or 1) if backtest.get("by_lag_bucket") else 1
    made = (
        f"forecasts made from {origins} points in time, the first {words.day(start)}"
        if origins > 1
        else f"forecasts made from {words.day(start)}"
    )
    scored = (
        f", scored against the {weeks} weeks of actual sales that followed (to "
        f"{words.day(start + dt.timedelta(weeks=weeks))})"
        if weeks
        else ", scored against the actual sales that followed"
    )
    fitted = f"Backtest: the model refitted on sales up to {words.day(start)}"
    return f"{fitted}; {made}{scored}. Holiday weeks count 5×."


def backtest_table(meta: ModelMetadata) -> dict[str, Any]:
    """WMAE overall and by horizon bucket for the model and the seasonal-naive baseline."""
    backtest = meta.get("backtest") or {}
    by_bucket, baseline_by_bucket = backtest_source(meta)
    model_label = KIND_LABELS.get(str(meta.get("kind", "")), str(meta.get("kind", "model")))
    series: dict[str, dict[str, float | None]] = {}  # label -> {"overall": x, bucket: x}
    order = [model_label, BASELINE_LABEL]

    def put(label: str, key: str, value: Any) -> None:
        number = _num(value)
        if number is not None:
            series.setdefault(label, {})[key] = number

    put(model_label, "overall", backtest.get("wmae"))
    put(BASELINE_LABEL, "overall", backtest.get("baseline_wmae"))
    buckets: list[str] = []
    for bucket, figures in by_bucket.items():
        buckets.append(str(bucket))
        put(model_label, str(bucket), figures.get("wmae"))
    for bucket, figures in baseline_by_bucket.items():
        if str(bucket) not in buckets:
            buckets.append(str(bucket))
        put(BASELINE_LABEL, str(bucket), figures.get("wmae"))
    buckets.sort(key=bucket_sort_key)
    order = [label for label in order if label in series]
    rows = [
        {
            "model": label,
            "overall": series[label].get("overall"),
            "buckets": [series[label].get(b) for b in buckets],
        }
        for label in order
    ]
    model_wmae = series.get(model_label, {}).get("overall")
    base_wmae = series.get(BASELINE_LABEL, {}).get("overall")
    improvement = (1 - model_wmae / base_wmae) if model_wmae is not None and base_wmae else None
    extras = {
        "mae": _num(backtest.get("mae")),
        "coverage_80": _num(backtest.get("coverage_80")),
        "coverage_95": _num(backtest.get("coverage_95")),
        "rows_count": backtest.get("rows"),
        "origin": backtest.get("origin"),
        "horizon": backtest.get("horizon"),
        "line": backtest_line(meta),
    }
    return {
        "buckets": buckets,
        "rows": rows,
        "model_label": model_label,
        "model_wmae": model_wmae,
        "baseline_wmae": base_wmae,
        "improvement": improvement,
        **extras,
    }


COVERAGE_ROWS = (
    ("coverage_80", "Actual sales inside the 80% range", "share"),
    ("coverage_95", "Actual sales inside the 95% range", "share"),
)


def range_scores(meta: ModelMetadata) -> dict[str, Any]:
    """Coverage and the proper scores of the ranges, overall and per horizon bucket, in planner words.

    Per bucket from the same source as the WMAE table (backtest_source) when its buckets carry the
    scores; for a model trained before they did, from the scores of its first backtest origin.
    """
    backtest = meta.get("backtest") or {}
    overall = backtest.get("scores") or {}
    by_bucket, _ = backtest_source(meta)
    if not any("interval_score_80" in (f or {}) for f in by_bucket.values()):
        by_bucket = overall.get("by_horizon") or {}
    buckets = sorted((str(b) for b in by_bucket), key=bucket_sort_key)
    rows = [
        {
            "key": key,
            "label": label,
            "unit": unit,
            "overall": _num(overall.get(key, backtest.get(key))),
            "values": [_num((by_bucket.get(b) or {}).get(key)) for b in buckets],
        }
        for key, label, unit in (*COVERAGE_ROWS, *words.SCORES)
    ]
    known = any(r["overall"] is not None or any(v is not None for v in r["values"]) for r in rows[2:])
    return {"buckets": buckets, "rows": rows if known else [], "lines": words.SCORE_LINES}


def scores_summary(meta: ModelMetadata) -> dict[str, Any]:
    """The API's view of range_scores: figure keys, overall and per horizon bucket."""
    table = range_scores(meta)
    return {
        "overall": {row["key"]: row["overall"] for row in table["rows"]},
        "by_bucket": {
            bucket: {row["key"]: row["values"][i] for row in table["rows"]}
            for i, bucket in enumerate(table["buckets"])
        },
    }


def _backtest_chart(table: dict[str, Any]) -> str | None:
    records = []
    for row in table["rows"]:
        for bucket, value in zip(table["buckets"], row["buckets"], strict=True):
            if value is not None:
                records.append({"bucket": words.weeks_ahead(bucket), "model": row["model"], "wmae": value})
    if not records:
        return None
    return charts.grouped_bar_chart(
        pd.DataFrame(records),
        group="bucket",
        series="model",
        value="wmae",
        value_title="Typical weekly error ($, lower is better)",
        width=640,
        height=220,
        series_order=[row["model"] for row in table["rows"]],
        group_order=[words.weeks_ahead(b) for b in table["buckets"]],
    )


def _importance_chart(importances: list[dict[str, Any]], top: int = 15) -> str | None:
    if not importances:
        return None
    frame = pd.DataFrame(importances[:top])
    return charts.bar_chart(
        frame,
        category="label",
        value="importance",
        value_title="Importance",
        value_format=charts.tick_format(float(frame["importance"].max())),
        color="#10b981",
        width=420,  # plus the names: about the half-width card's size, so it is scaled down little
        description=f"Feature importance, the {len(frame)} largest: "
        + ", ".join(frame["label"].head(5))
        + (" and others" if len(frame) > 5 else ""),
    )


def feature_descriptions(meta: ModelMetadata) -> list[dict[str, Any]]:
    """The model's features with type, description, range and importance (metadata, else the pipeline's)."""
    importances = {item["feature"]: item["importance"] for item in feature_importances(meta)}
    listed = meta.get("features") or []
    if listed:
        table = [(f["name"], f["type"], f["description"]) for f in listed]
        ranges = {f["name"]: (_num(f["min"]), _num(f["max"])) for f in listed}
    else:
        table, ranges = list(FEATURES), {}
    return [
        {
            "name": name,
            "label": feature_label(name),
            "type": kind,
            "description": text,
            "importance": importances.get(name),
            "minimum": ranges.get(name, (None, None))[0],
            "maximum": ranges.get(name, (None, None))[1],
        }
        for name, kind, text in table
    ]


def training_stats(meta: ModelMetadata, source: Any = None) -> dict[str, Any]:
    training = meta.get("training_window") or {}
    window = {"start": training.get("start"), "end": training.get("end")}
    stats = {
        "rows": training.get("rows"),
        "training_rows": training.get("training_rows"),
        "stores": None,
        "departments": None,
        "series": training.get("series"),
        "source": path_name(meta.get("data_source")),  # the data's name, never a server path
        "fingerprint": meta.get("data_fingerprint"),
        "lineage": meta.get("data_lineage"),
    }
    distribution: dict[str, float] = {}
    panel = getattr(source, "panel", None)
    if panel is not None:  # a loaded Forecaster: what the metadata does not record, from its history
        stats["stores"] = len(np.unique(panel.store))
        stats["departments"] = len(np.unique(panel.dept))
        stats["series"] = stats["series"] or len(panel.store)
        distribution = _distribution(panel.values)
    return {
        "window": window,
        "stats": stats,
        "distribution": {str(k): _num(v) for k, v in distribution.items()},
    }


def _distribution(values: Any) -> dict[str, float]:
    """Weekly sales quantiles of the training history (for the card's table)."""
    flat = np.asarray(values, dtype=float).ravel()
    flat = flat[np.isfinite(flat)]
    if not len(flat):
        return {}
    q = np.quantile(flat, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"mean": float(flat.mean()), "p5": q[0], "p25": q[1], "median": q[2], "p75": q[3], "p95": q[4]}


def model_summary(source: Any) -> dict[str, Any]:
    """GET /api/v1/model: the production model's key facts, JSON-ready."""
    meta = _metadata(source)
    origin = getattr(source, "origin", None) or meta.get("origin")
    training = training_stats(meta, source)
    return {
        "model_version": str(getattr(source, "version", None) or meta.get("version") or ""),
        "kind": str(meta.get("kind", "")),
        "params": jsonable(meta.get("params") or {}),
        "origin": str(origin)[:10] if origin is not None else None,
        "training": jsonable(
            {**training["window"], **training["stats"], "sales_distribution": training["distribution"]}
        ),
        "backtest": jsonable(meta.get("backtest") or {}),
        "feature_importances": feature_importances(meta),
        "backtest_scores": jsonable(scores_summary(meta)),
    }


def model_features(source: Any) -> list[dict[str, Any]]:
    """GET /api/v1/model/features: the model's computed features."""
    return [{**item, "kind": "model", "required": False} for item in feature_descriptions(_metadata(source))]


def _flat_params(params: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(params, Mapping):
        return []
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flat_params(value, f"{name}."))
        else:
            out.append((name, value))
    return out


def model_card_context(source: Any, *, with_charts: bool = True) -> dict[str, Any]:
    """Everything the model card partial shows, from a Forecaster or its metadata dict."""
    meta = _metadata(source)
    table = backtest_table(meta)
    importances = feature_importances(meta)
    card: dict[str, Any] = {
        "card_template": CARD_TEMPLATE,
        "version": str(getattr(source, "version", None) or meta.get("version") or ""),
        "kind": str(meta.get("kind", "")),
        "kind_label": KIND_LABELS.get(str(meta.get("kind", "")), str(meta.get("kind", "unknown"))),
        "origin": str(getattr(source, "origin", None) or meta.get("origin") or "")[:10] or None,
        "created_at": meta.get("created"),
        "train_seconds": meta.get("train_seconds"),
        "library_versions": meta.get("library_versions") or {},
        "params": _flat_params(meta.get("params") or {}),
        "backtest": table,
        "range_scores": range_scores(meta),
        "importances": importances[:20],
        "features": feature_descriptions(meta),
        "training": training_stats(meta, source),
        "intervals": meta.get("intervals") if isinstance(meta.get("intervals"), Mapping) else {},
        "backtest_chart": None,
        "importance_chart": None,
    }
    if with_charts:
        try:
            card["backtest_chart"] = _backtest_chart(table)
            card["importance_chart"] = _importance_chart(importances)
        except Exception:  # noqa: BLE001 - the card's tables still stand without the charts
            log.exception("model card charts failed")
    return card
