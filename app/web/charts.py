"""Altair charts rendered to SVG on the server (vl-convert): no chart runtime, no CDN, works without JS.

Charts draw text and axes in `currentColor`, so the page's light or dark theme colours them.
The first conversion in a process costs ~0.6 s (vl-convert starts its JS engine); warm() pays it in
a background thread at start-up, and identical specs come from a small cache.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

import altair as alt
import pandas as pd

log = logging.getLogger(__name__)

FORECAST_COLOR = "#2563eb"
HISTORY_COLOR = "#64748b"
BAND_80 = "#3b82f6"
BAND_95 = "#93c5fd"
SERIES_COLORS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b"]
WIDTH = 680

_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()
_warmed = threading.Event()
_warming = threading.Lock()


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(background="transparent", font="system-ui, -apple-system, Segoe UI, sans-serif")
        .configure_axis(
            labelColor="currentColor",
            titleColor="currentColor",
            domainColor="currentColor",
            tickColor="currentColor",
            gridColor="currentColor",
            gridOpacity=0.12,
            domainOpacity=0.4,
            tickOpacity=0.4,
            labelFontSize=11,
            titleFontSize=12,
        )
        .configure_legend(
            labelColor="currentColor",
            titleColor="currentColor",
            orient="bottom",
            labelFontSize=11,
            columnPadding=24,
            labelLimit=0,
        )
        .configure_title(color="currentColor", fontSize=14, anchor="start")
        .configure_view(stroke=None)
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an inline-able <svg> string (cached by spec)."""
    spec = _config(chart).to_dict()
    key = json.dumps(spec, sort_keys=True, default=str)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    import vl_convert  # deferred: loading the Vega engine costs ~1 s, and API-only workers never render

    svg = vl_convert.vegalite_to_svg(spec)
    svg = _responsive(svg)
    with _LOCK:
        _CACHE[key] = svg
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _warmed.set()
    return svg


def _responsive(svg: str) -> str:
    """Let CSS scale the SVG to its container (the viewBox keeps the aspect ratio)."""
    return svg.replace("<svg ", '<svg role="img" preserveAspectRatio="xMinYMin meet" ', 1)


def warm(background: bool = True) -> None:
    """Start vl-convert's engine once per process, off the request path."""
    if _warmed.is_set() or not _warming.acquire(blocking=False):
        return  # done, or being done by another thread (the lock stays held: once per process)

    def _run() -> None:
        try:
            frame = pd.DataFrame({"x": [0, 1], "y": [0, 1]})
            to_svg(alt.Chart(frame).mark_line().encode(x="x:Q", y="y:Q"))
        except Exception:  # noqa: BLE001 - warming is an optimisation; a real render will report errors
            log.exception("chart warm-up failed")

    if background:
        threading.Thread(target=_run, name="chart-warmup", daemon=True).start()
    else:
        _run()


def _dates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
    return frame


def forecast_chart(
    history: pd.DataFrame, forecast: pd.DataFrame, *, title: str = "", width: int = WIDTH, height: int = 300
) -> str:
    """History (date, weekly_sales) as a grey line, forecast (week, prediction, lower/upper_80/95) in blue
    with its 80% and 95% bands."""
    layers = []
    x_scale = alt.X("date:T", title=None, axis=alt.Axis(format="%b %Y", labelAngle=0, tickCount=6))
    if history is not None and len(history):
        hist = _dates(history[["date", "weekly_sales"]].dropna(), "date").assign(series="History")
        layers.append(
            alt.Chart(hist)
            .mark_line(strokeWidth=1.5, color=HISTORY_COLOR)
            .encode(
                x=x_scale,
                y=alt.Y(
                    "weekly_sales:Q",
                    title="Weekly sales ($)",
                    axis=alt.Axis(format="~s"),
                    scale=alt.Scale(zero=False),
                ),
            )
        )
    fc = _dates(forecast.rename(columns={"week": "date"}), "date")
    band = alt.Chart(fc).encode(x=x_scale)
    layers.insert(
        0,
        band.mark_area(color=BAND_95, opacity=0.35).encode(
            y=alt.Y(
                "lower_95:Q",
                title="Weekly sales ($)",
                axis=alt.Axis(format="~s"),
                scale=alt.Scale(zero=False),
            ),
            y2="upper_95:Q",
        ),
    )
    layers.insert(1, band.mark_area(color=BAND_80, opacity=0.35).encode(y="lower_80:Q", y2="upper_80:Q"))
    point_size = 40 if len(fc) <= 26 else 0
    layers.append(
        band.mark_line(
            color=FORECAST_COLOR, strokeWidth=2.5, point=alt.OverlayMarkDef(size=point_size)
        ).encode(y="prediction:Q")
    )
    chart = alt.layer(*layers).properties(width=width, height=height)
    if title:
        chart = chart.properties(title=title)
    return to_svg(chart)


def legend_items() -> list[tuple[str, str]]:
    """Legend for forecast_chart (drawn in HTML so it follows the theme and wraps on phones)."""
    return [
        (HISTORY_COLOR, "History"),
        (FORECAST_COLOR, "Forecast"),
        (BAND_80, "80% interval"),
        (BAND_95, "95% interval"),
    ]


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
) -> str:
    """Horizontal bars, largest first (department ranking, feature importances)."""
    frame = frame[[category, value]].copy()
    frame[category] = frame[category].astype(str)
    chart = (
        alt.Chart(frame)
        .mark_bar(color=color, cornerRadiusEnd=2)
        .encode(
            y=alt.Y(f"{category}:N", sort="-x", title=category_title),
            x=alt.X(f"{value}:Q", title=value_title, axis=alt.Axis(format=value_format)),
        )
        .properties(width=width - 130, height=max(60, bar_height * len(frame)))
    )
    return to_svg(chart)


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
) -> str:
    """Bars per group, one colour per series (backtest WMAE by horizon bucket and model)."""
    order = list(series_order or pd.unique(frame[series]))
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                f"{group}:N",
                sort=list(group_order) if group_order else None,
                title=None,
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset=alt.XOffset(f"{series}:N", sort=order),
            y=alt.Y(f"{value}:Q", title=value_title, axis=alt.Axis(format="~s")),
            color=alt.Color(
                f"{series}:N",
                sort=order,
                scale=alt.Scale(domain=order, range=SERIES_COLORS[: len(order)]),
                title=None,
            ),
        )
        .properties(width=width, height=height)
    )
    return to_svg(chart)


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
        return to_svg(lines)
    rules = (
        alt.Chart(pd.DataFrame({"target": list(targets)}))
        .mark_rule(strokeDash=[4, 4], opacity=0.5, color="currentColor")
        .encode(y="target:Q")
    )
    return to_svg(alt.layer(lines, rules))
