"""The web side of the weekly loop: published runs, one series' forecasts and accuracy by lag, shaped
for the API, the pages, the monitoring page and /metrics from app.loop's services (nothing is
recomputed here: every number is read from the stored runs and the lag scores)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd

from app.forecasting.intervals import LAG_BUCKET_LABELS
from app.forecasting.prediction import BANDS
from app.loop import accuracy, publish
from app.loop.history import lineage_of
from app.loop.weekly import backtest_by_lag
from app.monitoring.metrics import Gauge
from app.storage import MAX_ROW_ID, Storage
from app.web import charts, words
from app.web.model_card import backtest_line

log = logging.getLogger(__name__)

FIGURES = ("wmae", "naive_wmae", "value_added", "bias", "bias_pct", "coverage_80", "coverage_95")
# beside coverage, live and in the backtest: interval scores of the bands and wQL of the quantiles
SCORES = accuracy.SCORE_FIGURES


def valid_number(value: int) -> bool:
    """A store, department or run id from a URL that a database column can hold."""
    return 1 <= value <= MAX_ROW_ID


def bucket_title(bucket: str) -> str:
    """`1` -> `1 week ahead`, `2-4` -> `2-4 weeks ahead`."""
    return f"{bucket} week{'' if bucket == '1' else 's'} ahead"


def forecast_out(row: dict[str, Any]) -> dict[str, Any]:
    """A stored forecast row as the API's JSON (week as YYYY-MM-DD, amounts to the cent)."""
    return {
        "week": row["week"].isoformat(),
        "lag": int(row["lag"]),
        **{band: round(float(row[band]), 2) for band in BANDS},
    }


def csv_name(run: publish.PublishedRun) -> str:
    return f"storecast_forecast_run{run.id}_from_{run.data_through.isoformat()}.csv"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def accuracy_buckets(storage: Storage, forecaster: Any, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Every lag bucket: live figures of the model's lineage beside its own backtest for that bucket."""
    lineage = lineage_of(forecaster)
    live = accuracy.accuracy_by_lag(storage, lineage, since=since) if lineage else {}
    metadata = forecaster.metadata.get("backtest") or {}
    backtest = backtest_by_lag(forecaster)
    naive = metadata.get("baseline_by_lag_bucket") or {}
    out = []
    for bucket in LAG_BUCKET_LABELS:
        figures = live.get(bucket) or {}
        reference = backtest.get(bucket) or {}
        wmae, backtest_wmae = _float(figures.get("wmae")), _float(reference.get("wmae"))
        out.append(
            {
                "bucket": bucket,
                "rows": int(figures.get("rows") or 0),
                **{name: _float(figures.get(name)) for name in FIGURES},
                "backtest_wmae": backtest_wmae,
                "backtest_naive_wmae": _float((naive.get(bucket) or {}).get("wmae")),
                "backtest_coverage_80": _float(reference.get("coverage_80")),
                "backtest_coverage_95": _float(reference.get("coverage_95")),
                **{name: _float(figures.get(name)) for name in SCORES},
                **{f"backtest_{name}": _float(reference.get(name)) for name in SCORES},
                "ratio_to_backtest": wmae / backtest_wmae if wmae is not None and backtest_wmae else None,
            }
        )
    return out


# What each level's figures are, in a planner's words (the monitoring page and the API say it).
LEVEL_WORDS = {
    "series": (
        "Department in one store",
        "each published forecast of one department in one store, against its actual sales",
    ),
    "store": (
        "Store total",
        "a store's departments added up for a week, against the store's actual total",
    ),
    "department": (
        "Department across stores",
        "one department added up over every store selling it, against its actual total",
    ),
    "chain": (
        "Whole chain",
        "every store and department added up for a week, against the chain's actual total",
    ),
}
LEVEL_FIGURES = (
    "wmae", "naive_wmae", "value_added", "bias_pct", "coverage_80", "coverage_95",
    "interval_score_80", "interval_score_95",
)  # fmt: skip


def accuracy_levels(storage: Storage, forecaster: Any, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Live figures of the published forecasts at every level (accuracy.TRACKED_LEVELS), over every
    lag and per lag bucket, each with what it measures in words; a level not yet scored has 0 rows."""
    lineage = lineage_of(forecaster)
    live = accuracy.accuracy_by_level(storage, lineage, since=since) if lineage else {}
    out = []
    for level in accuracy.TRACKED_LEVELS:
        figures = live.get(level) or {}
        name, what = LEVEL_WORDS[level]
        out.append(
            {
                "level": level,
                "name": name,
                "what": what,
                "rows": int(figures.get("rows") or 0),
                **{key: _float(figures.get(key)) for key in LEVEL_FIGURES},
                "by_lag": [
                    {"bucket": bucket, "rows": int(f.get("rows") or 0)}
                    | {key: _float(f.get(key)) for key in LEVEL_FIGURES}
                    for bucket, f in (figures.get("by_lag") or {}).items()
                ],
            }
        )
    return out


# chart name, figure, how it is drawn (the monitoring page's live accuracy over the weeks)
COVERAGE = {"value_title": "actuals inside", "value_format": "%"}
ACCURACY_CHARTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("wmae", "wmae", {"title": "Live WMAE per week", "value_title": "WMAE"}),
    (
        "bias",
        "bias_pct",
        {
            "title": "Bias per week (share of sales)",
            "value_title": "bias",
            "value_format": "+.0%",
            "targets": (0.0,),
        },
    ),
    (
        "coverage_80",
        "coverage_80",
        {"title": "80% interval coverage (target dashed)", "targets": (0.8,), **COVERAGE},
    ),
    (
        "coverage_95",
        "coverage_95",
        {"title": "95% interval coverage (target dashed)", "targets": (0.95,), **COVERAGE},
    ),
)


def accuracy_charts(storage: Storage, lineage: str | None) -> dict[str, str]:
    """Live WMAE, bias and interval coverage per scored week and lag bucket ({} before any is scored)."""
    history = accuracy.accuracy_history(storage, lineage) if lineage else []
    frame = pd.DataFrame([h for h in history if h.get("rows")])
    if frame.empty:
        return {}
    order = [bucket_title(b) for b in LAG_BUCKET_LABELS if b in set(frame["bucket"])]
    frame["horizon"] = frame["bucket"].map(bucket_title)
    return {
        name: charts.weekly_lines(frame, series="horizon", series_order=order, value=value, **options)
        for name, value, options in ACCURACY_CHARTS
    }


def lag_accuracy_context(storage: Storage, forecaster: Any | None, model_name: str) -> dict[str, Any]:
    """The monitoring page's "Accuracy by lag" section (empty figures without a production model)."""
    latest = publish.latest_forecast_run(storage, model_name)
    if forecaster is None:
        empty = {"buckets": [], "levels": [], "charts": {}, "lineage": None, "model": None}
        return {"lag": empty | {"latest_run": latest}}
    lineage = lineage_of(forecaster)
    buckets = accuracy_buckets(storage, forecaster)
    return {
        "lag": {
            "buckets": buckets,
            "levels": accuracy_levels(storage, forecaster),
            "scored": sum(b["rows"] for b in buckets),
            "charts": accuracy_charts(storage, lineage),
            "lineage": lineage,
            "latest_run": latest,
            "model": str(forecaster.version),
            "data_through": forecaster.data_through,
            "backtest_line": backtest_line(forecaster.metadata),
            "score_names": words.SCORES,
            "score_lines": words.SCORE_LINES,
        }
    }


def _unix(day: dt.date) -> float:
    return float(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def lag_gauges(storage: Storage, forecaster: Any | None, model_name: str) -> list[Gauge]:
    """/metrics gauges: live accuracy per lag bucket, and how fresh the published and served data are."""
    gauges: list[Gauge] = []
    buckets = accuracy_buckets(storage, forecaster) if forecaster is not None else []
    wql_help = "Weighted quantile loss of the published quantiles (lower is better), by lag bucket."
    for name, key, help_text, labels in (
        ("storecast_live_wmae", "wmae", "Live WMAE of published forecasts, by lag bucket.", {}),
        ("storecast_live_naive_wmae", "naive_wmae", "The seasonal naive's live WMAE, by lag bucket.", {}),
        (
            "storecast_live_coverage_80",
            "coverage_80",
            "Share of actuals inside the 80% interval, by lag bucket.",
            {},
        ),
        ("storecast_live_bias", "bias", "Mean forecast minus actual ($), by lag bucket.", {}),
        *(
            (
                f"storecast_live_interval_score_{level}",
                f"interval_score_{level}",
                f"Mean interval score of the {level}% interval ($, lower is better), by lag bucket.",
                {},
            )
            for level in (80, 95)
        ),
        *(("storecast_live_wql", f"wql_{q}", wql_help, {"quantile": q}) for q in ("0.1", "0.5", "0.9")),
    ):
        for bucket in buckets:
            if bucket["rows"]:
                gauges.append((name, help_text, {"bucket": bucket["bucket"], **labels}, bucket[key]))
    latest = publish.latest_forecast_run(storage, model_name)
    gauges += [
        (
            "storecast_forecast_run_data_through",
            "Last week of sales the production model's newest published forecast run used (unix time).",
            {},
            _unix(latest.data_through) if latest else None,
        ),
        (
            "storecast_serving_data_through",
            "Last week of sales the served model forecasts from (unix time).",
            {},
            _unix(forecaster.data_through) if forecaster is not None else None,
        ),
    ]
    return gauges
