"""Published lag-1 forecasts and their actual sales written straight to the tables, week by week."""

from __future__ import annotations

import datetime as dt

START = dt.date(2012, 2, 3)


def add_week(
    storage, k: int, series: dict[tuple[int, int], tuple[float, float]], *, start: dt.date = START
) -> dt.date:
    """Week k: a run from week k-1 forecasting weeks k, k+1 and k+2 (lags 1-3, the same forecast), and
    week k's actual, per series (80% interval +-10% of the forecast, 95% interval +-20%)."""
    from app.storage import ActualSale, ForecastRow, ForecastRun

    week = start + dt.timedelta(weeks=k)
    with storage.session() as session:
        run = ForecastRun(
            model_version="v1", data_through=week - dt.timedelta(weeks=1), lineage="L", horizon=1,
            series=len(series), rows=len(series), seconds=0,
        )  # fmt: skip
        session.add(run)
        session.flush()
        for (store, dept), (forecast, actual) in series.items():
            for lag in (1, 2, 3):
                session.add(
                    ForecastRow(
                        run_id=run.id, store=store, dept=dept, week=week + dt.timedelta(weeks=lag - 1),
                        lag=lag, prediction=forecast, lower_80=forecast * 0.9, upper_80=forecast * 1.1,
                        lower_95=forecast * 0.8, upper_95=forecast * 1.2,
                    )
                )  # fmt: skip
            session.add(ActualSale(store=store, dept=dept, week=week, weekly_sales=actual, lineage="L"))
    return week
