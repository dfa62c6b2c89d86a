"""A drift report for a window of logged predictions: sample the window, test it, store the result.

Flask-free, so the scheduler's drift job, `flask replay` and the tests call the same code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from app.forecasting.covariates import Covariates
from app.monitoring import actual_features, drift, performance
from app.storage import DriftReport, DriftResult, PredictionLog, Storage, utcnow

DRIFT_SAMPLE_SIZE = 5000  # logged rows drawn at random from the window for the drift tests
_ID_CHUNK = 2000


def sample_window(
    storage: Storage,
    start: dt.datetime,
    end: dt.datetime,
    size: int = DRIFT_SAMPLE_SIZE,
    seed: int | None = None,
) -> tuple[int, pd.DataFrame]:
    """(rows in the window, a random sample of at most `size` of their inputs and predictions).

    The window's id range comes from the created_at index; ids are then drawn at random and read
    by primary key, so the cost follows the sample size, not the window's.
    """
    table = PredictionLog.__table__
    in_window = (table.c.created_at >= start, table.c.created_at < end)
    columns = (table.c.inputs, table.c.prediction, table.c.store, table.c.week)
    with storage.engine.connect() as connection:
        performance.tune_for_scans(connection)
        low, high, count = connection.execute(
            select(func.min(table.c.id), func.max(table.c.id), func.count()).where(*in_window)
        ).one()
        if not count:
            return 0, pd.DataFrame()
        if count <= size:
            rows = connection.execute(select(*columns).where(*in_window)).all()
        else:
            rng = np.random.default_rng(seed)
            span = high - low + 1
            ids = rng.choice(span, size=min(span, int(size * 1.1)), replace=False) + low
            rows = []
            for chunk in np.array_split(np.sort(ids), max(1, len(ids) // _ID_CHUNK)):
                rows += connection.execute(
                    select(*columns).where(table.c.id.in_([int(i) for i in chunk]), *in_window)
                ).all()
            rows = rows[:size]
    frame = drift.inputs_frame(row[0] for row in rows)
    frame["__prediction__"] = [row[1] for row in rows]
    frame["store"] = [row[2] for row in rows]
    frame["week"] = pd.to_datetime([row[3] for row in rows])
    return int(count), frame


def drift_check(
    storage: Storage,
    reference: dict[str, Any],
    *,
    version: str,
    start: dt.datetime,
    end: dt.datetime,
    settings: drift.DriftSettings | None = None,
    sample_size: int = DRIFT_SAMPLE_SIZE,
    seed: int | None = None,
    covariates: Covariates | None = None,
) -> dict[str, Any]:
    """Test the logged inputs and predictions of [start, end) against `reference`; store the report.

    With the model's `covariates`, the newest ingested actual covariates are compared with what it
    assumed for those store-weeks too.
    """
    settings = settings or drift.DriftSettings()
    rows, sample = sample_window(storage, start, end, sample_size, seed=seed)
    actual = pd.DataFrame()
    if covariates is not None:
        newest = actual_features.newest_week(storage)
        if newest is not None:
            since = newest - dt.timedelta(weeks=settings.actual_weeks - 1)
            actual = actual_features.features_frame(storage, since=since)
    if not rows and actual.empty:
        return {"skipped": "no predictions logged in the window", "rows": 0}
    predictions = sample.pop("__prediction__") if rows else None
    outcome = drift.compute_drift(
        reference, sample, settings, predictions, actual=actual, covariates=covariates
    )
    with storage.session() as session:
        report = DriftReport(
            computed_at=utcnow(),
            model_version=version or "",
            window_start=start,
            window_end=end,
            rows=rows,
            features_drifted=outcome.features_drifted,
            features_tested=outcome.features_tested,
            dataset_drift=outcome.dataset_drift,
        )
        session.add(report)
        session.flush()
        results = [
            *outcome.features,
            *outcome.actual_features,
            *([outcome.prediction] if outcome.prediction else []),
        ]
        session.add_all(
            DriftResult(
                report_id=report.id,
                feature=r.feature,
                test=r.test,
                statistic=float(r.statistic) if np.isfinite(r.statistic) else 1e9,
                p_value=r.p_value,
                threshold=r.threshold,
                psi=r.psi,
                drifted=r.drifted,
                sample_size=r.sample_size,
                details=r.details,
            )
            for r in results
        )
        report_id = report.id
    return {
        "report_id": report_id,
        "rows": rows,
        "sampled": len(sample),
        "features_drifted": outcome.features_drifted,
        "features_tested": outcome.features_tested,
        "dataset_drift": outcome.dataset_drift,
        "prediction_drift": bool(outcome.prediction and outcome.prediction.drifted),
        "actual_features_off": [r.feature for r in outcome.actual_features if r.drifted],
    }
