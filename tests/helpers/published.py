"""A published run's next week given actual sales and scored, as the weekly loop would."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert

from app.loop import accuracy, publish
from app.loop.history import lineage_of
from app.storage import ActualSale


def score_next_week(storage: Any, forecaster: Any, run: Any, factor: float = 1.1) -> dict[str, Any]:
    """Actual sales `factor` x each forecast of the week after the run's data, ingested and scored."""
    lineage = lineage_of(forecaster)
    week = run.data_through + dt.timedelta(weeks=1)
    rows = [r for r in publish.forecast_run_rows(storage, run.id) if r["week"] == week]
    with storage.session() as session:
        session.execute(
            insert(ActualSale),
            [
                {
                    "store": r["store"],
                    "dept": r["dept"],
                    "week": week,
                    "weekly_sales": round(r["prediction"] * factor, 2),
                    "is_holiday": False,
                    "lineage": lineage,
                }
                for r in rows
            ],
        )
    assert accuracy.score_new_weeks(storage, lineage, forecaster) == [week]
    return {"week": week, "rows": rows}
