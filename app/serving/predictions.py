"""The one path from validated inputs to served predictions, for the API, the pages and scripts:
call the production Forecaster, log every prediction, shape the result as plain dicts.

Plain Python: the web layer passes the model and a Caller (source, request id, where to log); the
core's ForecastError (unknown store, week out of range) reaches the caller as is.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from app.forecasting.calendar import friday_on_or_after
from app.forecasting.covariates import COV_SOURCES
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.explain import rounded
from app.forecasting.forecaster import Forecaster
from app.forecasting.prediction import BANDS
from app.monitoring.prediction_log import log_predictions
from app.storage import Storage

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who asks: the source and request id every logged prediction records, and where to log them."""

    source: str
    request_id: str
    log_to: Storage | None  # None: prediction logging is off


@dataclass
class Served:
    """Predictions as API dicts plus what produced them."""

    predictions: list[dict[str, Any]]
    model_version: str
    request_id: str
    latency_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


def cold_start_warning(store: int, dept: int) -> str:
    """What a cold-start estimate rests on: said with every answer that carries one, whichever endpoint."""
    return (
        f"store {store} has no sales history for dept {dept}: a cold-start estimate from the store's "
        "sales level and the department's seasonal profile in other stores, with wide intervals"
    )


def batch_warning(cold_starts: int) -> str:
    """The whole answer's warning when some rows of a batch are cold-start estimates."""
    rows = f"{cold_starts:,} row names" if cold_starts == 1 else f"{cold_starts:,} rows name"
    return (
        f"{rows} a store-department with no sales history: cold-start estimates with wide "
        "intervals (cold_start: true on each)"
    )


def iso_week(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date().isoformat()
    return str(value)[:10]


def prediction_dict(item: Any, prediction_id: Any = None) -> dict[str, Any]:
    """A core Prediction (or its to_dict()) as the API's JSON-ready dict.

    Reads the dataclass's attributes directly: dataclasses.asdict deep-copies and costs ~0.1 ms a
    prediction, which a 1,000-row batch cannot afford.
    """
    data = item if isinstance(item, dict) else getattr(item, "__dict__", None) or item.to_dict()
    get = data.get
    out: dict[str, Any] = {
        "store": int(data["store"]),
        "dept": int(data["dept"]),
        "week": iso_week(data["week"]),
        "horizon": int(get("horizon") or 0),
        "data_through": iso_week(through) if (through := get("data_through")) else None,
        "prediction": round(float(data["prediction"]), 2),
        "lower_80": round(float(data["lower_80"]), 2),
        "upper_80": round(float(data["upper_80"]), 2),
        "lower_95": round(float(data["lower_95"]), 2),
        "upper_95": round(float(data["upper_95"]), 2),
        "inputs": get("inputs") or {},  # plain JSON values: the core's Prediction makes them so
        "assumed": get("assumed") or {},
        "cold_start": bool(get("cold_start", False)),
    }
    if out["cold_start"]:
        out["warning"] = cold_start_warning(out["store"], out["dept"])
    out["model_version"] = str(get("model_version") or "")  # after `warning`: PredictionOut's order
    if prediction_id is not None:
        out["prediction_id"] = str(prediction_id)
    components = get("components")
    if components is not None:  # explained: the parts add up to the prediction as sent, to the cent
        out["components"] = rounded(components, out["prediction"])
        out["last_year_week"] = iso_week(week) if (week := get("last_year_week")) else None
        sales = get("last_year_sales")
        out["last_year_sales"] = None if sales is None else round(float(sales), 2)
    quantiles = get("quantiles")
    if quantiles is not None:
        out["quantiles"] = {name: round(float(value), 2) for name, value in quantiles.items()}
    return out


def log_and_shape(predictions: list[Any], caller: Caller, latency_ms: float) -> list[dict[str, Any]]:
    """Write every prediction to the prediction log; ids from the log become prediction_ids."""
    rid = caller.request_id
    ids = (
        log_predictions(
            caller.log_to, predictions, source=caller.source, request_id=rid, latency_ms=latency_ms
        )
        if predictions and caller.log_to is not None
        else []
    )
    if not ids or len(ids) != len(predictions):  # logging switched off: still give each a unique id
        ids = [f"{rid}-{i}" for i in range(len(predictions))]
    return [prediction_dict(p, pid) for p, pid in zip(predictions, ids, strict=True)]


def _version(model: Any, predictions: list[Any]) -> str:
    version = getattr(model, "version", None)
    if not version and predictions:
        version = getattr(predictions[0], "model_version", None)
    return str(version or "")


def check_rows(
    model: Forecaster,
    rows: Sequence[dict[str, Any]],
    lines: list[int] | None = None,
    indexes: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Per-row errors the core would raise for the whole batch at once (unknown store or department,
    week out of range), so that a batch answer names every bad row instead of the first problem.

    `indexes` are the rows' places in the request when only some of its rows are checked.
    """
    first, last = model.valid_range()
    lo, hi = first.date(), last.date()
    stores, departments = set(model.stores()), set(model.all_departments())
    known_stores = f"known stores: {min(stores)}..{max(stores)}" if stores else "no stores known"
    errors: list[dict[str, Any]] = []
    for place, row in enumerate(rows):
        index = place if indexes is None else indexes[place]
        extra = {"row": index} if lines is None else {"row": index, "line": lines[index]}
        if row["store"] not in stores:
            message = f"unknown store {row['store']}; {known_stores}"
            errors.append({"field": f"rows[{index}].store", "message": message, **extra})
        if row["dept"] not in departments:
            message = f"unknown department {row['dept']}: no store has sales history in it"
            errors.append({"field": f"rows[{index}].dept", "message": message, **extra})
        if not lo <= friday_on_or_after(row["date"]) <= hi:
            errors.append(
                {
                    "field": f"rows[{index}].date",
                    "message": f"the week must be between {lo} and {hi}",
                    **extra,
                }
            )
    return errors


def predict(
    model: Forecaster,
    rows: list[dict[str, Any]],
    caller: Caller,
    explain: bool = False,
    quantiles: list[float] | None = None,
) -> Served:
    """Predict rows (single or batch) and log them (`explain`: with their components; `quantiles`: with
    those quantiles)."""
    started = time.perf_counter()
    predictions = model.predict_rows(rows, explain=explain, quantiles=quantiles)
    latency = (time.perf_counter() - started) * 1000
    shaped = log_and_shape(predictions, caller, latency)
    return Served(shaped, _version(model, predictions), caller.request_id, latency)


BATCH_CHUNK = 5_000  # rows predicted, logged and shaped together: what a large batch holds at once


@dataclass
class ServedBatch(Generic[T]):
    """A batch's predictions, written chunk by chunk (`parts`), and what produced them."""

    parts: list[T]
    count: int
    model_version: str
    request_id: str
    latency_ms: float
    cold_starts: int = 0  # rows without sales history, answered with a cold-start estimate


def predict_batch(
    model: Forecaster,
    rows: Sequence[Any],
    caller: Caller,
    write: Callable[[list[dict[str, Any]]], T],
    chunk: int = BATCH_CHUNK,
    quantiles: list[float] | None = None,
) -> ServedBatch[T]:
    """Predict a batch of any size in chunks; each chunk is logged (one transaction), shaped and handed
    to `write` (which turns it into bytes, CSV text or a summary), so a 100,000-row batch never holds
    every prediction object, log row and answer dict at once, and the log's write lock is held for one
    chunk at a time.

    `rows` are the batch's validated rows (anything with to_row(), or row dicts). Every row is checked
    before the first chunk (check_rows): a chunk that still fails raises before its rows are logged.
    """
    parts: list[T] = []
    version = ""
    latency = 0.0
    cold_starts = 0
    for start in range(0, len(rows), chunk):
        part = [row.to_row() if hasattr(row, "to_row") else row for row in rows[start : start + chunk]]
        started = time.perf_counter()
        predictions = model.predict_rows(part, quantiles=quantiles)
        elapsed = (time.perf_counter() - started) * 1000
        latency += elapsed
        version = version or _version(model, predictions)
        cold_starts += sum(1 for p in predictions if p.cold_start)
        parts.append(write(log_and_shape(predictions, caller, elapsed)))
    return ServedBatch(
        parts, len(rows), version or _version(model, []), caller.request_id, latency, cold_starts
    )


def default_start(model: Any) -> dt.date:
    """The first week the model can forecast: the week after its history."""
    origin = getattr(model, "origin", None)
    return (origin + dt.timedelta(days=7)).date() if origin is not None else dt.date.today()


def forecast(
    model: Forecaster,
    store: int,
    dept: int,
    start: dt.date | None,
    weeks: int,
    covariates: list[dict[str, Any]] | None,
    caller: Caller,
    explain: bool = False,
    quantiles: list[float] | None = None,
) -> Served:
    """Consecutive weeks of one store-department, logged (`explain`: with their components; `quantiles`:
    with those quantiles)."""
    start = start or default_start(model)
    started = time.perf_counter()
    predictions = model.forecast(
        store, dept, start, weeks, covariates=covariates, explain=explain, quantiles=quantiles
    )
    latency = (time.perf_counter() - started) * 1000
    shaped = log_and_shape(predictions, caller, latency)
    return Served(shaped, _version(model, predictions), caller.request_id, latency, {"start": start})


def forecast_store(
    model: Forecaster,
    store: int,
    start: dt.date | None,
    weeks: int,
    caller: Caller,
) -> Served:
    """Every department of a store plus the store total; departments ranked by forecast total."""
    start = start or default_start(model)
    started = time.perf_counter()
    result = model.forecast_store(store, start, weeks)
    latency = (time.perf_counter() - started) * 1000
    departments = result.departments
    flat = [p for dept in sorted(departments) for p in departments[dept]]
    shaped = log_and_shape(flat, caller, latency)
    by_dept: dict[int, list[dict[str, Any]]] = {}
    for item in shaped:
        by_dept.setdefault(item["dept"], []).append(item)
    ranked = sorted(by_dept.items(), key=lambda kv: -sum(p["prediction"] for p in kv[1]))
    dept_rows = [
        {
            "dept": dept,
            "rank": rank,
            "total": round(sum(p["prediction"] for p in preds), 2),
            "predictions": preds,
        }
        for rank, (dept, preds) in enumerate(ranked, start=1)
    ]
    total = []
    for item in result.total:
        data = (
            item.to_dict()
            if hasattr(item, "to_dict")
            else dict(item)
            if isinstance(item, dict)
            else vars(item)
        )
        total.append(
            {
                "week": iso_week(data["week"]),
                "horizon": int(data.get("horizon") or 0),
                **{name: round(float(data[name]), 2) for name in BANDS},
            }
        )
    return Served(
        shaped,
        _version(model, flat),
        caller.request_id,
        latency,
        {"start": start, "total": total, "departments": dept_rows},
    )


SEEN_QUANTILES = (0.05, 0.95)  # the span of a covariate's past values a what-if range covers


def seen_values(model: Forecaster, store: int) -> dict[str, tuple[float, float]]:
    """Each covariate's 5th and 95th percentile over the weeks the features table gave for this store,
    up to the model's origin (not the values it filled in itself): the range a what-if can honestly
    explore. A covariate never given for the store is left out."""
    covariates = model.covariates
    position = int(covariates.store_pos(np.array([store]))[0])
    if position < 0:
        return {}
    upto = max(0, min(model.origin_week - covariates.first_week + 1, covariates.values.shape[1]))
    given = COV_SOURCES.index("features")
    out: dict[str, tuple[float, float]] = {}
    for column, name in enumerate(COVARIATE_COLUMNS):
        values = covariates.values[position, :upto, column]
        seen = values[(covariates.source[position, :upto, column] == given) & np.isfinite(values)]
        if len(seen):
            low, high = np.quantile(seen.astype(float), SEEN_QUANTILES)
            out[name] = (round(float(low), 2), round(float(high), 2))
    return out


def what_if(
    model: Forecaster,
    store: int,
    dept: int,
    start: dt.date,
    weeks: int,
    given: dict[str, Any],
    served_total: float,
) -> dict[str, Any]:
    """The sensitivity of a forecast to its covariates: the forecast with the model's own assumptions,
    each covariate the planner set and its effect alone, and for every covariate the model's response
    over the values seen in this store's data (`ranges`: the forecast with the covariate at its 5th and
    at its 95th percentile every week, against the model's assumptions). `served_total` is the forecast
    served with the values set, which the caller already has.

    These forecasts are comparisons, not served predictions: they are not logged.
    """
    default = model.forecast(store, dept, start, weeks)
    base_total = sum(p.prediction for p in default)

    def moved(name: str, value: Any) -> float:
        alone = model.forecast(store, dept, start, weeks, covariates=[{name: value}] * weeks)
        return round(sum(p.prediction for p in alone) - base_total, 2)

    seen = seen_values(model, store)
    ranges = [
        {
            "name": name,
            "seen_low": low,
            "seen_high": high,
            "at_low": moved(name, low),
            "at_high": moved(name, high),
            "assumed": default[0].inputs.get(name),
        }
        for name, (low, high) in seen.items()
    ]
    drivers = []
    for name, value in given.items():
        span = seen.get(name)
        drivers.append(
            {
                "name": name,
                "value": value,
                "assumed": default[0].inputs.get(name),
                "assumed_from": default[0].assumed.get(name),
                "difference": moved(name, value),
                "seen": span,
                "outside_seen": bool(
                    span and isinstance(value, int | float) and not span[0] <= value <= span[1]
                ),
            }
        )
    return {
        "default": [round(p.prediction, 2) for p in default],
        "default_total": round(base_total, 2),
        "difference": round(served_total - base_total, 2),
        "drivers": drivers,
        "ranges": ranges,
    }


def forecast_total(
    model: Forecaster, level: str, dept: int | None, start: dt.date | None, weeks: int
) -> dict[str, Any]:
    """The chain's total (`level` "chain") or a department's across stores, week by week with the
    intervals calibrated for its level, and its parts (the chain's departments, the department's
    stores) ranked by their total over the weeks. Not logged: every figure is a sum of series
    forecasts a planner can ask for one by one."""
    start = start or default_start(model)
    result = model.forecast_total(level, dept, start, weeks)
    week_rows = [
        {
            "level": level,
            "dept": dept,
            "week": iso_week(row["date"]),
            "horizon": int(row["horizon"]),
            **{name: round(float(row[name]), 2) for name in BANDS},
            "data_through": result.data_through.isoformat() if result.data_through else None,
        }
        for row in result.total.to_dict("records")
    ]
    parts = result.parts
    cents = (parts["prediction"].to_numpy(float) * 100).round().astype(np.int64)
    over_weeks = parts.assign(cents=cents).groupby("key")["cents"].sum().sort_values(ascending=False)
    grand = int(over_weeks.sum()) or 1
    name = "dept" if result.part_level == "department" else "store"
    ranked = [
        {name: int(key), "rank": rank, "total": int(c) / 100, "share": round(int(c) / grand, 4)}
        for rank, (key, c) in enumerate(over_weeks.items(), start=1)
    ]
    return {
        "model_version": result.model_version,
        "level": level,
        "dept": dept,
        "start": week_rows[0]["week"] if week_rows else start.isoformat(),
        "weeks": len(week_rows),
        "data_through": result.data_through.isoformat() if result.data_through else None,
        "predictions": week_rows,
        "total": int(cents.sum()) / 100,
        "parts": ranked,
        "part_level": result.part_level,
    }
