"""One turn of the weekly loop, after a week's actual sales have been ingested.

The caller passes the production model already rolled to the newest week of known sales
(history.roll_forward; the serving ModelHolder does it too). Then: publish a forecast run from that
week unless this model version has one (publish.publish keeps one per week and version), score every
published forecast of the weeks that now have actuals, check each lag bucket against the backtest,
flag persistently biased series, check store totals and departments against their intervals and the
week's file itself (app/loop/watch.py), and each store's arriving covariates against its own history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.engine import LOCAL, Engine
from app.forecasting.forecaster import Forecaster
from app.loop import accuracy, exceedance, publish, tracking, watch
from app.loop.history import lineage_of
from app.monitoring import actual_features, covariate_check
from app.monitoring.data_quality import report_data_quality
from app.storage import Storage

log = logging.getLogger(__name__)

QUALITY_HISTORY_WEEKS = 13  # the weeks a new week's sales are judged against (outliers need 8)


@dataclass(frozen=True)
class LoopSettings:
    degradation_factor: float = 1.5  # live WMAE of a lag bucket over the backtest's for that bucket
    degradation_min_rows: int = 2000  # scored forecasts in a bucket's window before it is judged
    degradation_window_weeks: int = 4
    tracking: tracking.TrackingSettings = field(default_factory=tracking.TrackingSettings)
    exceedance: exceedance.ExceedanceSettings = field(default_factory=exceedance.ExceedanceSettings)
    actuals_due_days: int = 3  # days after a week's Friday by which its actual sales are due
    engine: Engine = LOCAL  # where the published run is computed (FORECAST_ENGINE)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoopSettings:
        return cls(
            degradation_factor=float(config.get("DEGRADATION_FACTOR", cls.degradation_factor)),
            degradation_min_rows=int(config.get("DEGRADATION_MIN_ROWS", cls.degradation_min_rows)),
            degradation_window_weeks=int(
                config.get("DEGRADATION_WINDOW_WEEKS", cls.degradation_window_weeks)
            ),
            tracking=tracking.TrackingSettings.from_config(config),
            exceedance=exceedance.ExceedanceSettings.from_config(config),
            actuals_due_days=int(config.get("ACTUALS_DUE_DAYS", cls.actuals_due_days)),
            engine=Engine.from_config(config),
        )


def backtest_by_lag(forecaster: Forecaster) -> dict[str, Any]:
    """The model's own backtest per lag bucket (empty for models trained before it was recorded)."""
    return (forecaster.metadata.get("backtest") or {}).get("by_lag_bucket") or {}


def new_week_quality(storage: Storage, forecaster: Forecaster, weeks: int = QUALITY_HISTORY_WEEKS) -> dict:
    """The newest week of known sales judged against the weeks before it (new, vanished and outlying
    series), reported and alerted on rather than silently absorbed."""
    panel = forecaster.panel
    last = panel.values.shape[1] - 1
    first = max(0, last - weeks)
    block = panel.values[:, first : last + 1]
    rows, cols = np.nonzero(~np.isnan(block))
    frame = pd.DataFrame(
        {
            "store": panel.store[rows],
            "dept": panel.dept[rows],
            "date": calendar.week_date(panel.first_week + first + cols),
            "weekly_sales": block[rows, cols],
        }
    )
    newest = frame["date"] == frame["date"].max() if len(frame) else np.zeros(0, dtype=bool)
    with storage.session() as session:
        return report_data_quality(session, frame[~newest], frame[newest])


def run_week(
    storage: Storage,
    forecaster: Forecaster,
    settings: LoopSettings = LoopSettings(),
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Publish, score, check: one turn of the loop for the forecaster's newest week of known sales."""
    lineage = lineage_of(forecaster)
    run = publish.publish(storage, forecaster, now=now, engine=settings.engine)  # once per week and version
    published = run if run.outcome != publish.EXISTING else None
    trained_through = forecaster.metadata.get("origin")
    rolled = trained_through is None or forecaster.data_through.isoformat() > str(trained_through)
    quality = new_week_quality(storage, forecaster) if published and rolled else None  # ingested weeks only
    scored = accuracy.score_new_weeks(storage, lineage, forecaster)
    today = forecaster.data_through
    result: dict[str, Any] = {
        "data_through": today.isoformat(),
        "published_run": published.id if published else None,
        "published_rows": published.rows if published else 0,
        "weeks_scored": [w.isoformat() for w in scored],
        "data_quality": quality["issues"] if quality else [],
    }
    if lineage is None:
        result["skipped"] = "the model records no data lineage: published forecasts are not scored"
        return result
    with storage.session() as session:
        result["degradation_alerts"] = accuracy.check_degradation(
            session,
            storage,
            lineage,
            backtest_by_lag(forecaster),
            factor=settings.degradation_factor,
            min_rows=settings.degradation_min_rows,
            window_weeks=settings.degradation_window_weeks,
            today=today,
        )
        signals = tracking.tracking_signals(storage, lineage, today, settings.tracking)
        result["bias"] = tracking.flag_biased(session, signals, settings.tracking)
        found = exceedance.evaluate(storage, forecaster, lineage, today, settings.exceedance)
        feed = watch.feed_findings(forecaster, now, settings.actuals_due_days)
        result["watch"] = watch.raise_alerts(session, found, feed, result["bias"].pop("notices"))
        result["covariates"] = check_arriving_covariates(session, storage, forecaster)
    return result


def check_arriving_covariates(session: Any, storage: Storage, forecaster: Forecaster) -> dict[str, Any]:
    """The newest week of ingested covariates, store by store, against each store's own history."""
    week = actual_features.newest_week(storage)
    if week is None:
        return {"columns": [], "stores": []}
    origin = forecaster.metadata.get("origin")
    trained = dt.date.fromisoformat(str(origin)[:10]) if origin else None
    arriving = actual_features.features_frame(storage, since=week)
    return covariate_check.check_covariates(session, forecaster.covariates, arriving, week, trained)
