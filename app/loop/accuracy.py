"""Accuracy by lag: every published forecast of a week scored against that week's actual sales.

Scores are kept as sums per (week, lag bucket) in lag_accuracy, so any span of weeks adds up exactly;
each bucket is read beside the backtest's figure for the same bucket and beside the seasonal naive on
the same rows (the live forecast value added). Degradation compares like with like: a bucket's live
WMAE over the last weeks against the backtest's WMAE for that bucket, only over enough rows.

A planner reads totals too, so the same week's published forecasts are also added up per store, per
department across stores and for the whole chain (one total per key and run), and each total is
scored against its actual total and the range the serving model gives such a total at that lag
(totals.py). Their sums sit in the same table under the bucket label with the level's letter in front
("C:1", "D:5-13", "S:27-52"), so they add up over weeks like the series' and need no other table.

Beside coverage, the proper scores of the bands (scores.py): the interval scores of the 80% and 95%
bands, and the weighted quantile loss at 0.1, 0.5 and 0.9. A published row stores only the forecast
and the 80% and 95% bounds; that is enough, because a served forecast's 0.1 and 0.9 quantiles are the
80% band's ends and its 0.5 quantile is the forecast (IntervalCalibrator.quantile, `quantiles` on
/predict), so the pinball losses are those of the stored lower_80, prediction and upper_80.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from app.forecasting import totals
from app.forecasting.intervals import LAG_BUCKET_LABELS, lag_bucket
from app.forecasting.prediction import BANDS
from app.forecasting.scores import grouped_scores, interval_scores, pinball_losses, wql_from_sums
from app.monitoring import alerts
from app.storage import ActualSale, ForecastRow, ForecastRun, LagAccuracy, Storage, utcnow

log = logging.getLogger(__name__)

HOLIDAY_WEIGHT = 5.0
SCORE_SUMS = ("interval_score_80", "interval_score_95", "pinball_10", "pinball_50", "pinball_90")
SUMS = ("rows", "weight", "abs_error", "naive_abs_error", "error", "actual", "in_80", "in_95", *SCORE_SUMS)
# figure -> (sum, tau): the weighted quantile losses, each from its pinball sum over the summed |sales|
WQL = {"wql_0.1": ("pinball_10", 0.1), "wql_0.5": ("pinball_50", 0.5), "wql_0.9": ("pinball_90", 0.9)}
SCORE_FIGURES = ("interval_score_80", "interval_score_95", *WQL)
# The levels a published forecast is scored at: each series, and its totals (the letter that marks a
# level's bucket labels in lag_accuracy).
TRACKED_LEVELS = ("series", "store", "department", "chain")
LEVEL_MARK = {"store": "S", "department": "D", "chain": "C"}


def latest_runs(lineage: str) -> Any:
    """One run per data_through (the newest, should a week have been published twice)."""
    return (
        select(func.max(ForecastRun.id))
        .where(ForecastRun.lineage == lineage)
        .group_by(ForecastRun.data_through)
        .scalar_subquery()
    )


def scored_rows(connection: Any, week: dt.date, lineage: str) -> pd.DataFrame:
    """The published forecasts of `week` with their actual sales (same lineage only)."""
    rows = ForecastRow.__table__
    query = (
        select(
            rows.c.store,
            rows.c.dept,
            rows.c.lag,
            rows.c.prediction,
            rows.c.lower_80,
            rows.c.upper_80,
            rows.c.lower_95,
            rows.c.upper_95,
            rows.c.naive,
            ActualSale.weekly_sales,
            ActualSale.is_holiday,
        )
        .join(
            ActualSale,
            (ActualSale.store == rows.c.store)
            & (ActualSale.dept == rows.c.dept)
            & (ActualSale.week == rows.c.week),
        )
        .where(rows.c.week == week, rows.c.run_id.in_(latest_runs(lineage)), ActualSale.lineage == lineage)
    )
    return pd.DataFrame(connection.execute(query).all(), columns=[c.name for c in query.selected_columns])


def bucket_sums(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per lag bucket, the sums that WMAE, bias, coverage and the proper scores are made of."""
    y = frame["weekly_sales"].to_numpy(float)
    pred = frame["prediction"].to_numpy(float)
    naive = frame["naive"].fillna(frame["prediction"]).to_numpy(float)
    weight = np.where(frame["is_holiday"].to_numpy(bool), HOLIDAY_WEIGHT, 1.0)
    labels = lag_bucket(frame["lag"].to_numpy())
    lower_80, upper_80 = frame["lower_80"].to_numpy(float), frame["upper_80"].to_numpy(float)
    lower_95, upper_95 = frame["lower_95"].to_numpy(float), frame["upper_95"].to_numpy(float)
    quantiles = {"pinball_10": lower_80, "pinball_50": pred, "pinball_90": upper_80}
    parts = {
        "rows": np.ones(len(y)),
        "weight": weight,
        "abs_error": weight * np.abs(y - pred),
        "naive_abs_error": weight * np.abs(y - naive),
        "error": pred - y,
        "actual": np.abs(y),
        "in_80": (y >= lower_80) & (y <= upper_80),
        "in_95": (y >= lower_95) & (y <= upper_95),
        "interval_score_80": interval_scores(y, lower_80, upper_80, 0.2),
        "interval_score_95": interval_scores(y, lower_95, upper_95, 0.05),
        **{column: pinball_losses(y, quantiles[column], tau) for column, tau in WQL.values()},
    }
    out = {}
    for label in LAG_BUCKET_LABELS:
        m = labels == label
        if m.any():
            out[label] = {name: float(values[m].sum()) for name, values in parts.items()}
    return out


def level_bucket(level: str, label: str) -> str:
    """The lag_accuracy bucket of a lag bucket's totals at `level` (the label itself for series)."""
    return label if level == "series" else f"{LEVEL_MARK[level]}:{label}"


def total_rows(frame: pd.DataFrame, forecaster: Any, level: str) -> pd.DataFrame:
    """The scored rows of one week added up at `level` per key and lag (one published run per lag),
    with the range the serving model gives such a total at that lag: rows shaped as scored_rows'."""
    store, dept = frame["store"].to_numpy(), frame["dept"].to_numpy()
    lag = frame["lag"].to_numpy(np.int64)
    prediction = frame["prediction"].to_numpy(float)
    half = frame["upper_80"].to_numpy(float) - prediction
    rows = pd.DataFrame(
        {
            "store": store,
            "dept": dept,
            "date": lag,  # one week: its totals differ by the run, which the lag names
            "horizon": lag,
            "prediction": prediction,
            "half80": forecaster.bucket_only_half_width(store, dept, lag, half),
            "actual": frame["weekly_sales"].to_numpy(float),
        }
    )
    summed = totals.with_bounds(forecaster.calibrator, level, totals.sum_totals(level, rows))
    key = totals.level_key(level, store, dept)
    naive = frame["naive"].fillna(frame["prediction"]).to_numpy(float)
    naive_sum = pd.Series(naive).groupby([key, lag]).sum()
    return pd.DataFrame(
        {
            "lag": summed["horizon"].to_numpy(),
            "prediction": summed["prediction"].to_numpy(),
            **{band: summed[band].to_numpy() for band in totals.BAND_COLUMNS},
            "naive": naive_sum.reindex(pd.MultiIndex.from_arrays([summed["key"], summed["date"]])).to_numpy(),
            "weekly_sales": summed["actual"].to_numpy(),
            "is_holiday": bool(frame["is_holiday"].any()),
        }
    )


def level_sums(frame: pd.DataFrame, forecaster: Any | None) -> dict[str, dict[str, float]]:
    """bucket_sums of the series, and with a `forecaster` of their totals at every level, each under
    its level_bucket label."""
    out = bucket_sums(frame)
    if forecaster is None or frame.empty:
        return out
    for level in TRACKED_LEVELS[1:]:
        for label, values in bucket_sums(total_rows(frame, forecaster, level)).items():
            out[level_bucket(level, label)] = values
    return out


def weeks_to_score(storage: Storage, lineage: str) -> list[dt.date]:
    """Weeks with actuals and published forecasts that are unscored, or whose actuals changed since."""
    with storage.session() as session:
        first_run = session.scalar(
            select(func.min(ForecastRun.data_through)).where(ForecastRun.lineage == lineage)
        )
        if first_run is None:
            return []
        actual = dict(
            session.execute(
                select(ActualSale.week, func.max(ActualSale.ingested_at))
                .where(ActualSale.lineage == lineage, ActualSale.week > first_run)
                .group_by(ActualSale.week)
            ).all()
        )
        scored = dict(
            session.execute(
                select(LagAccuracy.week, func.min(LagAccuracy.computed_at))
                .where(LagAccuracy.lineage == lineage)
                .group_by(LagAccuracy.week)
            ).all()
        )
    return sorted(week for week, ingested in actual.items() if week not in scored or scored[week] < ingested)


def score_week(
    storage: Storage, week: dt.date, lineage: str, forecaster: Any | None = None
) -> dict[str, dict[str, float]]:
    """Score the published forecasts of one week (with a `forecaster`, their totals at every level
    too, against its ranges for them); replaces that week's earlier scores."""
    with storage.engine.connect() as connection:
        sums = level_sums(scored_rows(connection, week, lineage), forecaster)
    with storage.session() as session:
        session.execute(delete(LagAccuracy).where(LagAccuracy.week == week, LagAccuracy.lineage == lineage))
        if sums:
            now = utcnow()
            session.execute(
                insert(LagAccuracy),
                [
                    {"week": week, "bucket": label, "lineage": lineage, "computed_at": now, **values}
                    for label, values in sums.items()
                ],
            )
    return sums


def score_new_weeks(storage: Storage, lineage: str | None, forecaster: Any | None = None) -> list[dt.date]:
    """Score every week that awaits it (score_week); returns the weeks scored."""
    if lineage is None:
        return []
    weeks = weeks_to_score(storage, lineage)
    for week in weeks:
        score_week(storage, week, lineage, forecaster)
    if weeks:
        log.info("scored published forecasts of %d week(s), up to %s", len(weeks), weeks[-1])
    return weeks


def figures(sums: Mapping[str, float | None]) -> dict[str, Any]:
    """WMAE, naive WMAE, value added, bias, coverage and the proper scores from a bucket's sums.

    The scores are over the rows that carry them (`scored_rows`, `scored_actual`; by default every
    row when the score sums are known): a week scored before they were kept has none.
    """
    rows, weight = sums["rows"], sums["weight"]
    if not rows:
        return {"rows": 0}
    wmae, naive = sums["abs_error"] / weight, sums["naive_abs_error"] / weight
    known = sums.get("interval_score_80") is not None
    scored_rows = sums.get("scored_rows", rows if known else 0) or 0
    scored_actual = sums.get("scored_actual", sums["actual"] if known else 0) or 0
    scores: dict[str, float | None] = dict.fromkeys(SCORE_FIGURES)
    if scored_rows:
        scores["interval_score_80"] = sums["interval_score_80"] / scored_rows
        scores["interval_score_95"] = sums["interval_score_95"] / scored_rows
        for name, (column, _) in WQL.items():
            value = wql_from_sums(sums[column], scored_actual)
            scores[name] = None if np.isnan(value) else value
    return {
        "rows": int(rows),
        "wmae": wmae,
        "naive_wmae": naive,
        "value_added": 1 - wmae / naive if naive else None,
        "bias": sums["error"] / rows,
        "bias_pct": sums["error"] / sums["actual"] if sums["actual"] else None,
        "coverage_80": sums["in_80"] / rows,
        "coverage_95": sums["in_95"] / rows,
        "scored_rows": int(scored_rows),
        **scores,
    }


def _bucket_sums(
    storage: Storage, lineage: str | None, since: dt.date | None, until: dt.date | None
) -> dict[str, dict[str, float]]:
    """The stored sums per lag_accuracy bucket label over the scored weeks in (since, until]."""
    has_scores = LagAccuracy.interval_score_80.is_not(None)
    query = select(
        LagAccuracy.bucket,
        *(func.sum(getattr(LagAccuracy, name)) for name in SUMS),
        func.sum(case((has_scores, LagAccuracy.rows), else_=0)),
        func.sum(case((has_scores, LagAccuracy.actual), else_=0.0)),
    ).where(LagAccuracy.lineage == (lineage or ""))
    if since is not None:
        query = query.where(LagAccuracy.week > since)
    if until is not None:
        query = query.where(LagAccuracy.week <= until)
    with storage.session() as session:
        return {
            row[0]: dict(zip((*SUMS, "scored_rows", "scored_actual"), row[1:], strict=True))
            for row in session.execute(query.group_by(LagAccuracy.bucket))
        }


def accuracy_by_lag(
    storage: Storage, lineage: str | None, since: dt.date | None = None, until: dt.date | None = None
) -> dict[str, dict[str, Any]]:
    """Figures per lag bucket over the scored weeks in (since, until]."""
    found = _bucket_sums(storage, lineage, since, until)
    return {label: figures(found[label]) for label in LAG_BUCKET_LABELS if label in found}


def accuracy_by_quarter(
    storage: Storage,
    lineage: str,
    weeks: Iterable[dt.date],
    profile: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """Coverage and proper scores of every published forecast of `weeks` scored so far, per lag bucket
    and per quarter of series by volatility and by size (scores.grouped_scores), each series profiled
    by `profile(store, dept)` (Forecaster.series_profile of the model the weeks began with): overall
    coverage hides calm series over-covered and volatile ones under-covered."""
    with storage.engine.connect() as connection:
        frames = [scored_rows(connection, week, lineage) for week in weeks]
    frame = pd.concat([f for f in frames if not f.empty] or [pd.DataFrame(columns=frames[0].columns)])
    bands = {name: frame[name].to_numpy(float) for name in BANDS}
    volatility, size = profile(frame["store"].to_numpy(np.int64), frame["dept"].to_numpy(np.int64))
    y, lag = frame["weekly_sales"].to_numpy(float), frame["lag"].to_numpy()
    return grouped_scores(y, bands, lag, volatility, size)


def accuracy_by_level(
    storage: Storage, lineage: str | None, since: dt.date | None = None, until: dt.date | None = None
) -> dict[str, dict[str, Any]]:
    """Figures per level (TRACKED_LEVELS) over every lag, and per level and lag bucket (`by_lag`), over
    the scored weeks in (since, until]; a level none of whose totals were scored is left out."""
    found = _bucket_sums(storage, lineage, since, until)
    out = {}
    for level in TRACKED_LEVELS:
        parts = {
            label: found[level_bucket(level, label)]
            for label in LAG_BUCKET_LABELS
            if level_bucket(level, label) in found
        }
        if not parts:
            continue
        pooled = {
            name: sum(float(p[name] or 0) for p in parts.values())
            for name in (*SUMS, "scored_rows", "scored_actual")
        }
        out[level] = figures(pooled) | {"by_lag": {label: figures(p) for label, p in parts.items()}}
    return out


def accuracy_history(storage: Storage, lineage: str | None) -> list[dict[str, Any]]:
    """Figures per scored week and bucket, oldest first (the monitoring page's charts)."""
    with storage.session() as session:
        rows = session.scalars(
            select(LagAccuracy)
            .where(LagAccuracy.lineage == (lineage or ""), LagAccuracy.bucket.in_(LAG_BUCKET_LABELS))
            .order_by(LagAccuracy.week)
        ).all()
        return [
            {"week": r.week, "bucket": r.bucket, **figures({n: getattr(r, n) for n in SUMS})} for r in rows
        ]


def check_degradation(
    session: Session,
    storage: Storage,
    lineage: str | None,
    backtest_by_lag: Mapping[str, Any] | None,
    *,
    factor: float,
    min_rows: int,
    window_weeks: int,
    today: dt.date,
) -> list[int]:
    """Open (or refresh) a degradation alert per lag bucket whose live WMAE over the last weeks exceeds
    `factor` x the backtest's for that bucket; resolve the buckets that recovered. Returns open alert ids."""
    if lineage is None or not backtest_by_lag:
        return []
    live = accuracy_by_lag(storage, lineage, since=today - dt.timedelta(weeks=window_weeks), until=today)
    opened = []
    for label in LAG_BUCKET_LABELS:
        key = f"lag {label}"
        reference = (backtest_by_lag.get(label) or {}).get("wmae")
        figure = live.get(label)
        if not reference or not figure or figure["rows"] < min_rows:
            continue  # too few rows to mean anything: neither open nor close
        ratio = figure["wmae"] / reference
        if ratio <= factor:
            alerts.resolve_kind(session, "degradation", key)
            continue
        message = (
            f"forecasts {label} week(s) ahead: live WMAE {figure['wmae']:,.0f} over the last "
            f"{window_weeks} weeks is {ratio:.2f}x the backtest's {reference:,.0f} for that lag "
            f"(limit {factor:g}x; "
            f"{figure['rows']:,} forecasts scored; seasonal naive {figure['naive_wmae']:,.0f})"
        )
        severity = "critical" if ratio > 2 * factor else "warning"
        alert = alerts.open_alert(
            session, "degradation", severity, message, {"bucket": label, "ratio": ratio, **figure}, key=key
        )
        opened.append(alert.id)
    return opened
