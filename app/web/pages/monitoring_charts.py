"""The monitoring page's charts: Altair specs over performance snapshots and drift histograms, as SVG.

Rendering goes through app.web.svg.legible: drawn for a wide and a narrow container (vl-convert,
cached, themed with currentColor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from app.web.charts import SERIES_COLORS
from app.web.svg import legible

WIDTH = 440
HEIGHT = 170


def _time_lines(
    frame: pd.DataFrame, columns: dict[str, str], *, title: str, y_title: str, y_format: str = "~s"
) -> alt.Chart:
    long = frame.melt(id_vars=["window_end"], value_vars=list(columns), var_name="series", value_name="value")
    long["series"] = long["series"].map(columns)
    order = list(columns.values())
    return (
        alt.Chart(long.dropna(subset=["value"]), title=title)
        .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2)
        .encode(
            x=alt.X(
                "window_end:T", title=None, axis=alt.Axis(format="%H:%M", labelOverlap=True, tickCount=6)
            ),
            y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=y_format)),
            color=alt.Color(
                "series:N",
                sort=order,
                scale=alt.Scale(domain=order, range=SERIES_COLORS[: len(order)]),
                title=None,
            ),
            tooltip=[
                alt.Tooltip("window_end:T", format="%Y-%m-%d %H:%M"),
                "series:N",
                alt.Tooltip("value:Q"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def snapshot_charts(snapshots: Sequence[Any]) -> dict[str, str]:
    """SVGs keyed volume, latency, errors, accuracy, coverage ({} when there are no snapshots yet)."""
    if not snapshots:
        return {}
    frame = pd.DataFrame(
        [
            {
                "window_end": s.window_end,
                "requests": s.requests,
                "predictions": s.predictions,
                "p50": s.latency_p50,
                "p95": s.latency_p95,
                "p99": s.latency_p99,
                "rate_4xx": s.errors_4xx / s.requests if s.requests else 0.0,
                "rate_5xx": s.errors_5xx / s.requests if s.requests else 0.0,
                "live_wmae": s.live_wmae,
                "backtest_wmae": s.backtest_wmae,
                "coverage_80": s.coverage_80,
                "coverage_95": s.coverage_95,
            }
            for s in snapshots
        ]
    ).astype(
        {
            c: "float64"
            for c in ("p50", "p95", "p99", "live_wmae", "backtest_wmae", "coverage_80", "coverage_95")
        }
    )
    charts = {
        "volume": _time_lines(
            frame,
            {"requests": "requests", "predictions": "predictions"},
            title="Volume per window",
            y_title="count",
        ),
        "latency": _time_lines(
            frame,
            {"p50": "p50", "p95": "p95", "p99": "p99"},
            title="Request latency",
            y_title="ms",
            y_format="~r",
        ),
        "errors": _time_lines(
            frame, {"rate_4xx": "4xx", "rate_5xx": "5xx"}, title="Error rate", y_title="share", y_format="%"
        ),
        "accuracy": _time_lines(
            frame,
            {"live_wmae": "live WMAE", "backtest_wmae": "backtest WMAE"},
            title="Live WMAE against the backtest",
            y_title="WMAE",
        ),
    }
    coverage = _time_lines(
        frame,
        {"coverage_80": "80% interval", "coverage_95": "95% interval"},
        title="Interval coverage (targets dashed)",
        y_title="share of actuals inside",
        y_format="%",
    )
    targets = (
        alt.Chart(pd.DataFrame({"target": [0.8, 0.95]}))
        .mark_rule(strokeDash=[4, 4], opacity=0.5, color="currentColor")
        .encode(y="target:Q")
    )
    charts["coverage"] = alt.layer(coverage, targets)
    return {name: legible(chart) for name, chart in charts.items()}


def daily_chart(days: Sequence[dict[str, Any]]) -> str | None:
    """Predictions per UTC day over the long range (the retention's rollup, then the newest raw days)."""
    if not days:
        return None
    frame = pd.DataFrame(days).astype({"predictions": "int64"})
    frame["day"] = pd.to_datetime(frame["day"])
    chart = (
        alt.Chart(frame, title="Predictions per day")
        .mark_bar(color=SERIES_COLORS[0])
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelOverlap=True, tickCount=6)),
            y=alt.Y("predictions:Q", title="predictions", axis=alt.Axis(format="~s")),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), alt.Tooltip("predictions:Q", format=",")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return legible(chart)


def distribution_chart(feature: str, details: dict[str, Any]) -> str | None:
    """Reference and current distributions of one feature in one chart (shares per bin or category)."""
    if "histogram" in details:
        histogram = details["histogram"]
        edges = histogram["edges"]
        rows = []
        for label, shares in (("reference", histogram["reference"]), ("current", histogram["current"])):
            for i, share in enumerate(shares):
                rows.append({"from": edges[i], "to": edges[i + 1], "share": share, "sample": label})
        frame = pd.DataFrame(rows)
        chart = (
            alt.Chart(frame, title=f"{feature}: reference and current")
            .mark_bar(opacity=0.55, binSpacing=0)
            .encode(
                x=alt.X("from:Q", bin="binned", title=feature, axis=alt.Axis(format="~s")),
                x2="to:Q",
                y=alt.Y("share:Q", stack=None, title="share of values", axis=alt.Axis(format="%")),
                color=alt.Color(
                    "sample:N",
                    scale=alt.Scale(domain=["reference", "current"], range=SERIES_COLORS[:2]),
                    title=None,
                ),
                tooltip=[
                    "sample:N",
                    alt.Tooltip("from:Q", format=",.2f"),
                    alt.Tooltip("share:Q", format=".1%"),
                ],
            )
            .properties(width=560, height=200)
        )
        return legible(chart)
    if "categories" in details:
        rows = [
            {"category": c, "share": share, "sample": label}
            for label in ("reference", "current")
            for c, share in zip(details["categories"], details[label], strict=True)
        ]
        chart = (
            alt.Chart(pd.DataFrame(rows), title=f"{feature}: reference and current")
            .mark_bar()
            .encode(
                x=alt.X("category:N", title=feature, axis=alt.Axis(labelAngle=0)),
                xOffset=alt.XOffset("sample:N", sort=["reference", "current"]),
                y=alt.Y("share:Q", title="share of values", axis=alt.Axis(format="%")),
                color=alt.Color(
                    "sample:N",
                    sort=["reference", "current"],
                    scale=alt.Scale(domain=["reference", "current"], range=SERIES_COLORS[:2]),
                    title=None,
                ),
            )
            .properties(width=560, height=200)
        )
        return legible(chart)
    return None
