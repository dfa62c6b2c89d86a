"""Retraining in the weekly loop: a refit on the newest data replaces production only through a gate.

The experiment's gate backtests a recipe at a fixed origin, so a refit of production's own recipe on
more data scores exactly what production's recipe scores: it can never win. This gate asks the
question a refit answers: over the last weeks (half of those production has not seen, at most
`holdout_weeks`), does the recipe fitted on the newer data forecast better than the production model
itself? Both forecast the same rows from the same origin with the same history (production rolled
forward, as it serves); only the fit differs. The candidate must beat production by `margin`; then
it is fitted on all the data, registered and promoted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.forecasting import calendar
from app.forecasting.data import Dataset
from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import actual_rows, forecast_actuals, wmae
from app.forecasting.panel import Panel
from app.forecasting.training import train
from app.registry import experiment, versions
from app.registry.training_runs import track_run
from app.storage import Storage

log = logging.getLogger(__name__)

HOLDOUT_WEEKS = 8


def holdout_wmae(forecaster: Forecaster, panel: Panel, origin: int, weeks: int) -> tuple[float, int]:
    """WMAE of the forecaster over the actual rows of the weeks after `origin` (holiday weeks x5)."""
    rows = actual_rows(panel, origin, weeks)
    res = forecast_actuals(forecaster, rows)
    y = rows["weekly_sales"].to_numpy()
    return wmae(y, res["prediction"], res["holiday"].astype(bool)), len(rows)


def retrain_through_gate(
    storage: Storage,
    dataset: Dataset,
    production: Forecaster,
    *,
    model_name: str,
    models_dir: str | Path,
    kind: str,
    params: dict[str, Any] | None = None,
    margin: float = 0.01,
    holdout_weeks: int = HOLDOUT_WEEKS,
    by: str = "retrain",
) -> dict[str, Any]:
    """Refit on `dataset` (base data plus actuals) and promote it only if it beats production recently."""
    started = time.perf_counter()
    panel = Panel.from_sales(dataset.sales)
    # Half of the weeks production has not seen, at most `holdout_weeks`: the other half is what the
    # refit learns from that production did not.
    holdout_weeks = min(holdout_weeks, max(1, (panel.last_week - production.origin_week) // 2))
    origin = panel.last_week - holdout_weeks
    origin_date = calendar.week_date(origin)[0]
    if production.origin_week > origin:
        return {
            "promoted": False,
            "gate": f"production already knows sales after {origin_date.date()}: no test",
        }
    with track_run(
        storage,
        "backtest",
        kind,
        params={"gate": "recent holdout", "holdout_weeks": holdout_weeks},
        dataset=dataset,
    ) as run:
        candidate = train(dataset.through(origin_date), kind, params=params).forecaster
        known = dataset.sales[dataset.sales["date"] <= origin_date]
        rolled = production.with_history(known)
        candidate_wmae, rows = holdout_wmae(candidate, panel, origin, holdout_weeks)
        production_wmae, _ = holdout_wmae(rolled, panel, origin, holdout_weeks)
        run.log_metrics(
            {
                "wmae": candidate_wmae,
                "production_wmae": production_wmae,
                "rows": rows,
                "origin": str(origin_date.date()),
            }
        )
    gain = 1 - candidate_wmae / production_wmae if production_wmae else 0.0
    result: dict[str, Any] = {
        "origin": origin_date.date().isoformat(),
        "holdout_weeks": holdout_weeks,
        "rows": rows,
        "candidate_wmae": candidate_wmae,
        "production_wmae": production_wmae,
        "gain": gain,
        "run_id": run.id,
    }
    summary = (
        f"over the {holdout_weeks} weeks after {origin_date.date()} ({rows:,} forecasts) the refit scores "
        f"WMAE {candidate_wmae:,.1f} against production {production.version}'s {production_wmae:,.1f} "
        f"({gain:+.1%}, margin {margin:.1%})"
    )
    if not np.isfinite(gain) or gain < margin:
        result.update(promoted=False, gate=f"not promoted: {summary}")
        result["seconds"] = round(time.perf_counter() - started, 1)
        log.info("retrain %s", result["gate"])
        return result
    version = experiment.train_and_register(
        storage, dataset, kind, model_name=model_name, models_dir=models_dir, params=params,
        stage="staging", by=by, reason=f"retrain candidate: {summary}",
    )  # fmt: skip
    # force: the gate scored both on the same recent weeks, which outranks their stored backtests
    versions.promote(
        storage, model_name, version["version"], by=by, reason=f"retrain gate: {summary}", force=True
    )
    result.update(promoted=True, version=version["label"], gate=f"promoted {version['label']}: {summary}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    log.info("retrain %s", result["gate"])
    return result
