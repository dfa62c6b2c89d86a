"""The pages' charts as Altair specs: a forecast with its bands, a waterfall, bars and lines, each drawn
for a wide and a narrow container. Rendering them to SVG is svg.py's."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from app.web import words
from app.web.svg import LEGIBLE_FONT, NARROW_WIDTH, legible, wide_and_narrow

log = logging.getLogger(__name__)

FORECAST_COLOR = "#2563eb"
HISTORY_COLOR = "#64748b"
BAND_80 = "#3b82f6"
BAND_95 = "#93c5fd"
LAST_YEAR_COLOR = "#d97706"
UP_COLOR = "#059669"
DOWN_COLOR = "#dc2626"
SERIES_COLORS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b"]
WIDTH = 680


def _dates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
    return frame


def forecast_chart(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    *,
    title: str = "",
    width: int = WIDTH,
    height: int = 300,
    description: str = "",
    last_year: bool = False,
) -> str:
    """History (date, weekly_sales) as a grey line, forecast (week, prediction, lower/upper_80/95) in blue
    with its 80% and 95% bands; `last_year`: the forecast's last_year_sales (the same week a year before)
    as a dashed line on the forecast's weeks.

    When the history ends before the forecast starts and there are several weeks to forecast, the two
    are drawn side by side on one sales axis, the forecast in the wider panel: on a shared time axis two
    years of history would squeeze a quarter's forecast into a sliver. Drawn wide and narrow
    (wide_and_narrow)."""
    fc = _dates(forecast.rename(columns={"week": "date"}), "date")
    hist = (
        _dates(history[["date", "weekly_sales"]].dropna(), "date")
        if history is not None and len(history)
        else None
    )
    split = hist is not None and len(fc) > 1 and hist["date"].max() < fc["date"].min()
    summary = (
        f"Weekly sales: history, and the forecast of {words.weeks(len(fc))} with its 80% and 95% intervals"
    )

    def build(narrow: bool) -> alt.TopLevelMixin:
        plot = NARROW_WIDTH if narrow else width
        ticks = 3 if narrow else 6
        y_axis = alt.Axis(format="~s", tickCount=4 if narrow else 6)
        y_title = None if narrow else "Weekly sales ($)"
        if not split:
            layers = _forecast_layers(fc, last_year, y_axis, y_title, ticks)
            if hist is not None:
                layers.append(_history_line(hist, y_axis, y_title, ticks))
            chart = alt.layer(*layers).properties(width=plot, height=height)
        else:
            history_width = round(plot * 0.36)
            # a year alone on a phone: "Jan 11" beside the forecast's "Jan" read as a day
            past = _history_line(hist, y_axis, y_title, 2 if narrow else 4, "%Y" if narrow else "%b %Y")
            ahead = alt.layer(
                *_forecast_layers(fc, last_year, None, None, ticks, "%-d %b", own_axis=True)
            ).properties(width=plot - history_width, height=height)
            chart = alt.hconcat(
                past.properties(width=history_width, height=height), ahead, spacing=6
            ).resolve_scale(y="shared")
        return chart.properties(title=title) if title else chart

    return wide_and_narrow(build, description or title or summary)


def _x(ticks: int, fmt: str = "%b %Y", weeks: pd.Series | None = None) -> alt.X:
    """The time axis; with `weeks` (week-ending dates), its ticks on those Fridays, at most `ticks` of
    them, first and last included: left to itself Vega puts week ticks on Sundays, beside no point."""
    if weeks is not None and len(weeks):
        stamps = pd.to_datetime(pd.Series(weeks).drop_duplicates()).sort_values()
        places = sorted({round(p) for p in np.linspace(0, len(stamps) - 1, min(ticks, len(stamps)))})
        values = [int(stamps.iloc[p].value // 1_000_000) for p in places]  # epoch ms, as Vega reads dates
        axis = alt.Axis(format=fmt, labelAngle=0, values=values)
    else:
        axis = alt.Axis(format=fmt, labelAngle=0, tickCount=ticks)
    # padding: the last week's point and whiskers stay inside the plot
    return alt.X("date:T", title=None, axis=axis, scale=alt.Scale(padding=10))


def _history_line(
    hist: pd.DataFrame, y_axis: alt.Axis | None, y_title: str | None, ticks: int, fmt: str = "%b %Y"
) -> alt.Chart:
    return (
        alt.Chart(hist)
        .mark_line(strokeWidth=1.5, color=HISTORY_COLOR)
        .encode(
            x=_x(ticks, fmt),
            y=alt.Y("weekly_sales:Q", title=y_title, axis=y_axis, scale=alt.Scale(zero=False)),
        )
    )


def _forecast_layers(
    fc: pd.DataFrame,
    last_year: bool,
    y_axis: alt.Axis | None,
    y_title: str | None,
    ticks: int,
    fmt: str = "%b %Y",
    own_axis: bool = False,
) -> list[alt.Chart]:
    """The forecast's bands, line and points (and last year's dashed line) on the forecast's weeks;
    `own_axis`: in a panel of their own, ticked on their weeks."""
    band = alt.Chart(fc).encode(x=_x(ticks, fmt, fc["date"] if own_axis else None))
    layers = [
        band.mark_area(color=BAND_95, opacity=0.35).encode(
            y=alt.Y("lower_95:Q", title=y_title, axis=y_axis, scale=alt.Scale(zero=False)),
            y2="upper_95:Q",
        ),
        band.mark_area(color=BAND_80, opacity=0.35).encode(y="lower_80:Q", y2="upper_80:Q"),
    ]
    if len(fc) == 1:  # one week: an area has no width, so the intervals are drawn as whiskers
        layers.append(band.mark_rule(color=BAND_95, strokeWidth=8).encode(y="lower_95:Q", y2="upper_95:Q"))
        layers.append(band.mark_rule(color=BAND_80, strokeWidth=8).encode(y="lower_80:Q", y2="upper_80:Q"))
    point_size = 40 if len(fc) <= 26 else 0
    layers.append(
        band.mark_line(
            color=FORECAST_COLOR, strokeWidth=2.5, point=alt.OverlayMarkDef(size=point_size)
        ).encode(y="prediction:Q")
    )
    if len(fc) == 1:  # and the week itself as a point that stands out of its whiskers
        layers.append(
            band.mark_point(
                filled=True, size=110, color=FORECAST_COLOR, stroke="white", strokeWidth=1.5
            ).encode(y="prediction:Q")
        )
    if last_year and "last_year_sales" in fc and fc["last_year_sales"].notna().any():
        layers.append(
            band.mark_line(
                color=LAST_YEAR_COLOR,
                strokeWidth=1.5,
                strokeDash=[5, 3],
                point=alt.OverlayMarkDef(
                    size=110 if len(fc) == 1 else 0,
                    shape="diamond",
                    filled=True,
                    color=LAST_YEAR_COLOR,
                    stroke="white",
                ),
            ).encode(y="last_year_sales:Q")
        )
    return layers


def legend_items(last_year: bool = False) -> list[tuple[str, str]]:
    """Legend for forecast_chart (drawn in HTML so it follows the theme and wraps on phones)."""
    return [
        (HISTORY_COLOR, "History"),
        (FORECAST_COLOR, "Forecast"),
        *([(LAST_YEAR_COLOR, "Same week last year")] if last_year else []),
        (BAND_80, "80% interval"),
        (BAND_95, "95% interval"),
    ]


def signed_dollars(value: float) -> str:
    """+$1,234 or −$1,234 (a true minus sign): a change in sales, as the waterfall and its sentence say it."""
    return f"{'+' if value >= 0 else '−'}${abs(value):,.0f}"


def waterfall_chart(
    steps: Sequence[tuple[str, float]],
    total_label: str,
    *,
    width: int = 460,
    bar_height: int = 28,
    description: str = "",
) -> str:
    """A horizontal waterfall: the first step as a level, each next one from where the last ended (green
    up, red down), then the total as a level in the forecast's blue; each bar labelled with its amount.

    The axis spans the levels the steps pass through (not zero): the adjustments are a few percent of
    last year's value and would be invisible slivers beside bars drawn from zero; the levels' bars run
    in from the left edge, and the axis says where it starts.
    """
    rows, end = [], 0.0
    for i, (label, amount) in enumerate(steps):
        start = 0.0 if i == 0 else end
        end = start + amount
        kind = "start" if i == 0 else "up" if amount >= 0 else "down"
        text = f"${amount:,.0f}" if i == 0 else signed_dollars(amount)
        rows.append({"step": label, "start": start, "end": end, "kind": kind, "text": text})
    rows.append({"step": total_label, "start": 0.0, "end": end, "kind": "total", "text": f"${end:,.0f}"})
    frame = pd.DataFrame(rows)
    levels = frame["end"].to_numpy(float)
    low, high = float(levels.min()), float(levels.max())
    pad = max(high - low, 0.02 * max(abs(low), abs(high), 1.0))
    domain = [low - pad, high + 0.45 * pad]  # room on the right for the labels
    frame["start"] = frame["start"].clip(lower=domain[0])
    frame["right"] = frame[["start", "end"]].max(axis=1)
    order = list(frame["step"])
    colors = {"start": HISTORY_COLOR, "up": UP_COLOR, "down": DOWN_COLOR, "total": FORECAST_COLOR}
    base = alt.Chart(frame).encode(
        y=alt.Y(
            "step:N",
            sort=order,
            title=None,
            axis=alt.Axis(labelLimit=0, ticks=False, domain=False, labelFontSize=LEGIBLE_FONT),
        )
    )
    bars = base.mark_bar(cornerRadius=2, clip=True).encode(
        x=alt.X(
            "start:Q",
            title="Weekly sales ($)",
            scale=alt.Scale(domain=domain, zero=False, nice=False),
            axis=alt.Axis(format="~s", tickCount=3, labelFontSize=LEGIBLE_FONT),
        ),
        x2="end:Q",
        color=alt.Color(
            "kind:N", scale=alt.Scale(domain=list(colors), range=list(colors.values())), legend=None
        ),
    )
    labels = base.mark_text(align="left", dx=4, color="currentColor", fontSize=LEGIBLE_FONT).encode(
        x="right:Q", text="text:N"
    )

    def build(narrow: bool) -> alt.TopLevelMixin:
        plot = 150 if narrow else width - 150
        return alt.layer(bars, labels).properties(width=plot, height=bar_height * len(frame))

    return wide_and_narrow(build, description or f"{total_label}, step by step: " + ", ".join(frame["text"]))


def tick_format(largest: float) -> str:
    """A d3 format with enough decimals that no two ticks of an axis from 0 to `largest` print alike
    (".2~f" printed 0.002 and 0.004 both as "0"): Vega's ticks are at least largest/10 apart."""
    if not largest or not math.isfinite(largest) or largest <= 0:
        return "~s"
    decimals = max(0, -math.floor(math.log10(largest / 10)))
    return f",.{decimals}~f"


def bar_chart(
    frame: pd.DataFrame,
    *,
    category: str,
    value: str,
    value_title: str,
    category_title: str | None = None,
    width: int = WIDTH,
    bar_height: int = 18,
    value_format: str = "~s",
    color: str = FORECAST_COLOR,
    description: str = "",
) -> str:
    """Horizontal bars, largest first (department ranking, feature importances), drawn wide and narrow;
    in the wide drawing category names are never cut short (labelLimit 0: the chart grows to fit them)."""
    frame = frame[[category, value]].copy()
    frame[category] = frame[category].astype(str)
    label = description or f"{value_title} by {category_title or category}"

    def build(narrow: bool) -> alt.TopLevelMixin:
        return (
            alt.Chart(frame)
            .mark_bar(color=color, cornerRadiusEnd=2)
            .encode(
                # narrow: long names are cut at 175 px (with an ellipsis) so the bars keep some width
                y=alt.Y(
                    f"{category}:N",
                    sort="-x",
                    title=category_title,
                    axis=alt.Axis(labelLimit=175 if narrow else 0),
                ),
                x=alt.X(
                    f"{value}:Q",
                    title=value_title,
                    axis=alt.Axis(format=value_format, tickCount=3 if narrow else 5),
                ),
            )
            .properties(
                width=NARROW_WIDTH - 90 if narrow else width - 130,
                height=max(60, (bar_height + 4) * len(frame)),
            )
        )

    return wide_and_narrow(build, label)


def grouped_bar_chart(
    frame: pd.DataFrame,
    *,
    group: str,
    series: str,
    value: str,
    value_title: str,
    series_order: Sequence[str] | None = None,
    group_order: Sequence[str] | None = None,
    width: int = WIDTH,
    height: int = 260,
    description: str = "",
) -> str:
    """Bars per group, one colour per series (backtest WMAE by horizon bucket and model)."""
    order = list(series_order or pd.unique(frame[series]))
    label = description or f"{value_title} by {group}, one bar per {series}: {', '.join(order)}"

    def build(narrow: bool) -> alt.TopLevelMixin:
        return _grouped(
            frame, group, series, value, value_title, order, group_order, height, narrow
        ).properties(width=NARROW_WIDTH if narrow else width)

    return wide_and_narrow(build, label)


def _grouped(
    frame: pd.DataFrame,
    group: str,
    series: str,
    value: str,
    value_title: str,
    order: list[str],
    group_order: Sequence[str] | None,
    height: int,
    narrow: bool,
) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            # narrow: the buckets by their first word ("2–4 weeks ahead" -> "2–4") under one title
            x=alt.X(
                f"{group}:N",
                sort=list(group_order) if group_order else None,
                title="weeks ahead" if narrow else None,
                axis=alt.Axis(labelAngle=0, labelLimit=0, labelExpr="split(datum.label, ' ')[0]")
                if narrow
                else alt.Axis(labelAngle=0),
            ),
            xOffset=alt.XOffset(f"{series}:N", sort=order),
            y=alt.Y(
                f"{value}:Q",
                title=value_title.split(" (")[0] if narrow else value_title,
                axis=alt.Axis(format="~s"),
            ),
            color=alt.Color(
                f"{series}:N",
                sort=order,
                scale=alt.Scale(domain=order, range=SERIES_COLORS[: len(order)]),
                title=None,
                legend=alt.Legend(direction="vertical") if narrow else alt.Legend(),
            ),
        )
        .properties(height=height)
    )


def weekly_lines(
    frame: pd.DataFrame,
    *,
    value: str,
    series: str,
    title: str,
    value_title: str,
    series_order: Sequence[str] | None = None,
    value_format: str = "~s",
    targets: Sequence[float] = (),
    width: int = 440,
    height: int = 190,
) -> str:
    """One line per series over weeks (frame: week, series, value), dashed target rules if given
    (live accuracy per lag bucket on the monitoring page)."""
    order = list(series_order or pd.unique(frame[series]))
    data = _dates(frame[["week", series, value]].dropna(), "week")
    weeks = sorted(pd.unique(data["week"]))
    # few weeks: a tick on each scored week; many: a few month ticks
    ticks = (
        {
            "values": [
                alt.DateTime(year=int(w[:4]), month=int(w[5:7]), date=int(w[8:]), utc=True) for w in weeks
            ]
        }
        if len(weeks) <= 8
        else {"tickCount": 6}
    )
    lines = (
        alt.Chart(data, title=title)
        .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2)
        .encode(
            x=alt.X(
                "week:T",
                title=None,
                axis=alt.Axis(format="%d %b" if len(weeks) <= 8 else "%b %Y", labelOverlap=True, **ticks),
            ),
            y=alt.Y(f"{value}:Q", title=value_title, axis=alt.Axis(format=value_format)),
            color=alt.Color(
                f"{series}:N",
                sort=order,
                scale=alt.Scale(domain=order, range=SERIES_COLORS[: len(order)]),
                title=None,
            ),
        )
        .properties(width=width, height=height)
    )
    if not targets:
        return legible(lines, title)
    rules = (
        alt.Chart(pd.DataFrame({"target": list(targets)}))
        .mark_rule(strokeDash=[4, 4], opacity=0.5, color="currentColor")
        .encode(y="target:Q")
    )
    return legible(alt.layer(lines, rules), title)
