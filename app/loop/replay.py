"""Replay: the weekly loop driven over past weeks of a dataset, with the clock set to each week.

Train on sales up to `start`; then, week by week, ingest that week's rows of train.csv as actual sales
through the import and the check that `flask actuals import` uses (against the served model), roll the
production model forward, publish a forecast run, score and check everything the scheduler would, and
every K weeks retrain through the experiment's gate. It proves the loop on the real files and measures it.

With faults (app/loop/faults.py) the weeks fed to the loop come from a faulted copy of the data kept in
memory, and the replay reports per fault the weeks until the first alert naming what broke, at warning
and at info level, beside the alerts of the weeks before any fault began.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from app.config import Config
from app.forecasting.artifacts import ArtifactInfo
from app.forecasting.data import TRAIN_HEADER, Dataset
from app.forecasting.forecaster import Forecaster
from app.forecasting.prediction import BANDS
from app.loop import accuracy, faults, retrain, weekly
from app.loop.history import lineage_of, production_forecaster, roll_forward
from app.monitoring import actual_features, actuals, alerts, drift_report, prediction_log, sales_check
from app.registry import experiment, versions
from app.registry.actual_history import dataset_with_actuals
from app.storage import Alert, ForecastRow, ForecastRun, Storage

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
FORECASTS_HEADER = ["run_week", "Store", "Dept", "Date", "lag", *BANDS]
PLANNER_SERIES = 60


@dataclass
class ReplaySettings:
    start: dt.date
    weeks: int
    retrain_every: int | None = None
    kind: str = "hgb"
    params: dict[str, Any] | None = None
    margin: float = 0.01
    loop: weekly.LoopSettings = field(default_factory=weekly.LoopSettings)
    max_sales_multiple: float = Config.ACTUALS_MAX_SALES_MULTIPLE
    faults: tuple[faults.Fault, ...] = ()
    artifact: ArtifactInfo | None = None  # a model already trained on sales up to start: no training


def week_csv(sales: pd.DataFrame) -> bytes:
    """Rows of a sales frame in train.csv's format, as a store's system would send them."""
    frame = pd.DataFrame(
        {
            "Store": sales["store"],
            "Dept": sales["dept"],
            "Date": sales["date"].dt.strftime("%Y-%m-%d"),
            "Weekly_Sales": sales["weekly_sales"],
            "IsHoliday": sales["is_holiday"].map({True: "TRUE", False: "FALSE"}),
        }
    )[TRAIN_HEADER]
    return frame.to_csv(index=False).encode()


def planner_requests(
    storage: Storage, forecaster: Forecaster, now: dt.datetime, *, seed: int, series: int = PLANNER_SERIES
) -> int:
    """What planners ask in a week: 52-week forecasts of a few series, logged as the API logs them
    (the drift job judges the logged inputs)."""
    rng = np.random.default_rng(seed)
    known = np.flatnonzero(forecaster.state.has_history)
    chosen = rng.choice(known, size=min(series, len(known)), replace=False)
    start = forecaster.data_through + dt.timedelta(weeks=1)
    predictions = [
        p
        for i in chosen
        for p in forecaster.forecast(int(forecaster.panel.store[i]), int(forecaster.panel.dept[i]), start, 52)
    ]
    rows = prediction_log.to_rows(
        predictions, source="forecast", request_id=f"replay-{now:%Y%m%d}", latency_ms=0.0, now=now
    )
    prediction_log.write_rows(storage, rows)
    return len(rows)


def _new_alerts(storage: Storage, after_id: int) -> tuple[list[dict[str, Any]], int]:
    with storage.session() as session:
        rows = session.scalars(select(Alert).where(Alert.id > after_id).order_by(Alert.id)).all()
        found = [
            {"kind": a.kind, "severity": a.severity, "store": a.store, "dept": a.dept, "message": a.message}
            for a in rows
        ]
        last = max([after_id, *(a.id for a in rows)])
    return found, last


def replay(
    storage: Storage,
    dataset: Dataset,
    settings: ReplaySettings,
    *,
    model_name: str,
    models_dir: str | Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the loop over `settings.weeks` weeks after `settings.start`; returns the replay's figures."""
    say = progress or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    start = pd.Timestamp(settings.start)
    base_data = dataset.through(start)
    if settings.artifact is not None:
        first = _register(storage, settings.artifact, model_name)
        say(f"replaying with {first['label']}, trained on sales up to {start.date()}")
    else:
        say(f"training {settings.kind} on sales up to {start.date()} ({len(base_data.sales):,} rows)")
        first = experiment.train_and_register(
            storage,
            base_data,
            settings.kind,
            model_name=model_name,
            models_dir=models_dir,
            params=settings.params,
            stage="production",
            by="replay",
            reason=f"replay from {start.date()}",
        )
    fed = faults.apply_faults(dataset, settings.faults) if settings.faults else dataset
    base = first_model = production_forecaster(storage, model_name)
    backtest = base.metadata.get("backtest") or {}
    with storage.session() as session:
        last_alert = int(session.scalar(select(func.max(Alert.id))) or 0)
    weeks, retrains = [], []
    seen: list[list[dict[str, Any]]] = []
    served = base
    for k in range(1, settings.weeks + 1):
        week_started = time.perf_counter()
        week = start + pd.Timedelta(weeks=k)
        rows = fed.sales[fed.sales["date"] == week]
        bounds = sales_check.bounds_for(served, week.date(), settings.max_sales_multiple)
        with storage.session() as session:
            imported = (
                actuals.import_csv(
                    session,
                    week_csv(rows),
                    name=f"train-{week.date()}.csv",
                    model_name=model_name,
                    bounds=bounds,
                )
                if len(rows)
                else actuals.ImportResult(0, 0, 0, 0)
            )
            actual_features.upsert_features(session, fed.features[fed.features["date"] == week])
        forecaster = served = roll_forward(base, storage)
        now = dt.datetime.combine(week.date() + dt.timedelta(days=3), dt.time(6))
        turn = weekly.run_week(storage, forecaster, settings.loop, now=now)
        planner_requests(storage, forecaster, now, seed=k)
        drift = drift_report.drift_check(
            storage,
            base.metadata.get("reference") or {},
            version=forecaster.version,
            start=now - dt.timedelta(days=1),
            end=now + dt.timedelta(seconds=1),
            covariates=forecaster.covariates,
        )
        with storage.session() as session:
            alerts.evaluate(session, {})
        if settings.retrain_every and k % settings.retrain_every == 0:
            retrains.append(
                _retrain(storage, base_data, base, settings, week.date(), model_name, models_dir, say)
            )
            base = production_forecaster(storage, model_name)
        opened, last_alert = _new_alerts(storage, last_alert)
        seen.append(_alerts_of_week(storage, opened))
        weeks.append(
            {
                "week": week.date().isoformat(),
                "actual_rows": imported.received,
                "data_through": turn["data_through"],
                "published_rows": turn["published_rows"],
                "data_quality": turn["data_quality"],
                "drift": {k: drift.get(k) for k in ("features_drifted", "features_tested", "dataset_drift")},
                "model_version": forecaster.version,
                "alerts_opened": opened,
                "seconds": round(time.perf_counter() - week_started, 2),
            }
        )
        lag1 = accuracy.accuracy_by_lag(storage, lineage_of(forecaster), since=start.date()).get("1", {})
        say(
            f"week {k}/{settings.weeks} {week.date()}: {imported.received:,} actuals, "
            f"{turn['published_rows']:,} forecasts published, lag-1 WMAE so far "
            + (f"{lag1['wmae']:,.0f} (naive {lag1['naive_wmae']:,.0f})" if lag1.get("rows") else "-")
            + (f", {len(opened)} alert(s)" if opened else "")
            + f" [{weeks[-1]['seconds']:.1f}s]"
        )
    by_lag = accuracy.accuracy_by_lag(storage, lineage_of(base), since=start.date())
    scored = [dt.date.fromisoformat(w["week"]) for w in weeks]
    return {
        "start": start.date().isoformat(),
        "weeks": weeks,
        "first_version": first["label"],
        "accuracy_by_lag": by_lag,
        "scores": accuracy.accuracy_by_quarter(storage, lineage_of(base), scored, first_model.series_profile),
        "backtest_by_bucket": backtest.get("by_lag_bucket") or {},
        "backtest_naive_by_bucket": backtest.get("baseline_by_lag_bucket") or {},
        "backtest_origin": backtest.get("origin"),
        "retrains": retrains,
        "alerts_opened": sum(len(w["alerts_opened"]) for w in weeks),
        "faults": [detection(f, start.date(), seen) for f in settings.faults],
        "clean_alerts": clean_alerts(weeks, settings.faults),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _register(storage: Storage, artifact: ArtifactInfo, model_name: str) -> dict[str, Any]:
    meta = artifact.metadata
    return versions.register_version(
        storage,
        model_name,
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind=str(meta.get("kind") or "hgb"),
        metrics=meta.get("backtest") or {},
        stage="production",
        by="replay",
        reason="replay with a model trained before",
        data_source=meta.get("data_source"),
        data_lineage=meta.get("data_lineage"),
    )


def _alerts_of_week(storage: Storage, opened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts standing at the end of a week: every open one, and those opened then closed within it."""
    with storage.session() as session:
        standing = [
            {"kind": a.kind, "severity": a.severity, "store": a.store, "dept": a.dept, "details": a.details}
            for a in alerts.open_alerts(session)
        ]
    return standing + opened


def detection(fault: faults.Fault, start: dt.date, seen: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Weeks from the fault's first week until an alert naming what broke stands, at warning and at info
    (1: the week it arrived; None: never within the replay)."""
    first = (fault.start - start).days // 7  # the replay's week number of the fault's first week
    found: dict[str, Any] = {"warning": None, "info": None}
    kinds: dict[str, str | None] = {"warning": None, "info": None}
    for k in range(max(first, 1), len(seen) + 1):
        for alert in seen[k - 1]:
            if not faults.names_entity(fault, alert):
                continue
            level = "info" if alert["severity"] == "info" else "warning"
            if found[level] is None:
                found[level], kinds[level] = k - first + 1, alert["kind"]
    return {
        **fault.describe(),
        "weeks_to_warning": found["warning"],
        "weeks_to_info": found["info"],
        "warning_kind": kinds["warning"],
        "info_kind": kinds["info"],
    }


def clean_alerts(weeks: list[dict[str, Any]], injected: tuple[faults.Fault, ...]) -> dict[str, Any]:
    """Alerts opened at each level over the weeks before any fault began."""
    begins = min((f.start.isoformat() for f in injected), default=None)
    clean = [w for w in weeks if begins is None or w["week"] < begins]
    levels = {s: 0 for s in alerts.SEVERITIES}
    by_kind: dict[str, int] = {}
    for week in clean:
        for alert in week["alerts_opened"]:
            levels[alert["severity"]] += 1
            name = f"{alert['kind']} {alert['severity']}"
            by_kind[name] = by_kind.get(name, 0) + 1
    return {"weeks": len(clean), "by_level": levels, "by_kind": by_kind}


def _retrain(
    storage: Storage,
    base_data: Dataset,
    production: Forecaster,
    settings: ReplaySettings,
    week: dt.date,
    model_name: str,
    models_dir: str | Path,
    say: Progress,
) -> dict[str, Any]:
    """Refit on the base data plus the actuals so far; the recent-holdout gate decides on promotion."""
    say(f"retraining on the data through {week} (gate: the last {retrain.HOLDOUT_WEEKS} weeks)")
    result = retrain.retrain_through_gate(
        storage,
        dataset_with_actuals(base_data, storage),
        production,
        model_name=model_name,
        models_dir=models_dir,
        kind=settings.kind,
        params=settings.params,
        margin=settings.margin,
        by="replay",
    )
    say(result["gate"])
    return {"week": week.isoformat(), **result}


def write_forecasts(storage: Storage, out: IO[str]) -> int:
    """Every published forecast, run by run: run_week,Store,Dept,Date,lag,prediction,... ."""
    rows, runs = ForecastRow.__table__, ForecastRun.__table__
    query = (
        select(
            runs.c.data_through,
            rows.c.store,
            rows.c.dept,
            rows.c.week,
            rows.c.lag,
            *(rows.c[b] for b in BANDS),
        )
        .join(runs, runs.c.id == rows.c.run_id)
        .order_by(rows.c.run_id, rows.c.store, rows.c.dept, rows.c.week)
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FORECASTS_HEADER)
    count = 0
    with storage.engine.connect() as connection:
        result = connection.execution_options(yield_per=50_000).execute(query)
        for row in result:
            writer.writerow(
                [
                    row[0].isoformat(),
                    row[1],
                    row[2],
                    row[3].isoformat(),
                    row[4],
                    *(f"{v:.2f}" for v in row[5:]),
                ]
            )
            count += 1
    return count
