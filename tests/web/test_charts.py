"""Charts render to self-contained SVG from plain DataFrames (no CDN, no JavaScript)."""

from __future__ import annotations

import re
from html import unescape

import altair as alt
import numpy as np
import pandas as pd
import pytest

from app.web import charts
from app.web import svg as rendering


@pytest.fixture(scope="module")
def frames():
    history = pd.DataFrame(
        {
            "date": pd.date_range("2011-01-07", periods=60, freq="7D"),
            "weekly_sales": np.linspace(2e4, 3e4, 60),
        }
    )
    forecast = pd.DataFrame(
        {"week": pd.date_range("2012-03-02", periods=8, freq="7D"), "prediction": 25000.0}
    )
    for name, delta in (("80", 2000), ("95", 4000)):
        forecast[f"lower_{name}"] = forecast["prediction"] - delta
        forecast[f"upper_{name}"] = forecast["prediction"] + delta
    return history, forecast


def assert_clean_svg(svg: str) -> None:
    if svg.startswith('<div class="chart-wide">'):  # drawn for a wide and a narrow container
        wide, narrow = re.fullmatch(
            r'<div class="chart-wide">(.*)</div><div class="chart-narrow">(.*)</div>', svg
        ).groups()
        assert_clean_svg(wide)
        assert_clean_svg(narrow)
        return
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "http://" not in svg.replace("http://www.w3.org", "") and "https://" not in svg
    assert "<script" not in svg


def test_forecast_chart_draws_history_forecast_and_bands(frames):
    history, forecast = frames
    svg = charts.forecast_chart(history, forecast)
    assert_clean_svg(svg)
    assert "currentColor" in svg  # text follows the page theme
    assert charts.FORECAST_COLOR in svg and charts.HISTORY_COLOR in svg
    assert svg.count("<path") >= 4  # two bands, history line, forecast line


def test_forecast_chart_without_history(frames):
    _, forecast = frames
    assert_clean_svg(charts.forecast_chart(pd.DataFrame(columns=["date", "weekly_sales"]), forecast))


def test_cache_returns_the_same_svg(frames):
    history, forecast = frames
    spec = alt.Chart(history).mark_line().encode(x="date:T", y="weekly_sales:Q")
    first = rendering.to_svg(spec, "cache")
    assert rendering.to_svg(spec, "cache") is first


def test_forecast_chart_gives_the_forecast_its_own_wider_panel_in_both_drawings(frames):
    history, forecast = frames
    svg = charts.forecast_chart(history, forecast)
    wide, narrow = svg.split('<div class="chart-narrow">')
    for drawing in (wide, narrow):  # history and forecast side by side, the forecast the wider
        assert "concat_0_group" in drawing and "concat_1_group" in drawing
        widths = [float(w) for w in re.findall(r'<path class="background"[^>]*d="M0,0h([\d.]+)', drawing)]
        assert len(widths) >= 2 and widths[1] > 1.5 * widths[0], widths
        sizes = {int(s) for s in re.findall(r'font-size="(\d+)px"', drawing)}
        assert sizes and min(sizes) >= rendering.LEGIBLE_FONT, sizes
    one_week = charts.forecast_chart(history, forecast.head(1))
    assert "concat_1_group" not in one_week  # a single week is a point at the end of its history


def test_bar_and_grouped_bar_charts():
    bars = charts.bar_chart(
        pd.DataFrame({"dept": [1, 2, 3], "total": [5.0, 3.0, 9.0]}),
        category="dept",
        value="total",
        value_title="$",
    )
    assert_clean_svg(bars)
    grouped = charts.grouped_bar_chart(
        pd.DataFrame(
            {"bucket": ["1-4", "1-4", "5-13", "5-13"], "model": ["hgb", "naive"] * 2, "wmae": [1, 2, 3, 4]}
        ),
        group="bucket",
        series="model",
        value="wmae",
        value_title="WMAE",
    )
    assert_clean_svg(grouped)
    assert "naive" in grouped and "hgb" in grouped


def test_warm_runs_in_the_foreground():
    rendering.warm(background=False)
    assert rendering._warmed.is_set()


def _texts(svg: str) -> list[str]:
    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_every_chart_is_named_for_screen_readers(frames):
    history, forecast = frames
    svg = charts.forecast_chart(history, forecast, description="Store 1 <total> & more")
    assert svg.startswith(
        '<div class="chart-wide"><svg role="img" aria-label="Store 1 &lt;total&gt; &amp; more"'
    )
    assert "<title>Store 1 &lt;total&gt; &amp; more</title>" in svg[:400]
    narrow = svg.split('<div class="chart-narrow">')[1]
    assert narrow.startswith('<svg role="img" aria-label="Store 1 &lt;total&gt; &amp; more"')
    default = charts.forecast_chart(history, forecast)
    assert 'aria-label="Weekly sales: history, and the forecast of 8 weeks' in default
    titled = rendering.to_svg(
        alt.Chart(history, title="Volume").mark_line().encode(x="date:T", y="weekly_sales:Q")
    )
    assert 'aria-label="Volume"' in titled and "<title>Volume</title>" in titled


def test_importance_ticks_are_distinct_at_any_scale():
    for largest in (0.02, 0.18, 0.9, 7.0, 3000.0):
        frame = pd.DataFrame({"name": list("abcdef"), "value": np.linspace(largest / 6, largest, 6)})
        svg = charts.bar_chart(
            frame, category="name", value="value", value_title="v", value_format=charts.tick_format(largest)
        )
        for drawing in svg.split('<div class="chart-narrow">'):  # the wide and the narrow drawing
            ticks = [t for t in _texts(drawing) if re.fullmatch(r"[\d.,]+", t)]
            assert len(ticks) >= 3 and len(ticks) == len(set(ticks)), (largest, ticks)
    old = charts.bar_chart(  # the format the card used: 0.002 and 0.004 both printed "0"
        pd.DataFrame({"name": ["a", "b"], "value": [0.01, 0.02]}),
        category="name",
        value="value",
        value_title="v",
        value_format=".2~f",
    )
    ticks = [t for t in _texts(old.split('<div class="chart-narrow">')[0]) if re.fullmatch(r"[\d.,]+", t)]
    assert len(ticks) != len(set(ticks))


def test_long_category_names_are_not_cut_short():
    name = "Sales in the same holiday week last year"
    svg = charts.bar_chart(
        pd.DataFrame({"name": [name, "b"], "value": [1.0, 2.0]}),
        category="name",
        value="value",
        value_title="v",
    )
    assert name in _texts(svg)  # whole, no ellipsis


def test_a_forecast_panel_is_ticked_on_its_own_fridays_first_and_last_included():
    from app.web.charts import _x

    weeks = pd.Series(pd.date_range("2012-11-02", periods=52, freq="W-FRI"))
    values = _x(3, "%-d %b", weeks).to_dict()["axis"]["values"]
    ticked = pd.to_datetime(values, unit="ms")
    assert list(ticked) == [weeks.iloc[0], weeks.iloc[26], weeks.iloc[-1]]
    assert all(day.weekday() == 4 for day in ticked)  # Vega alone ticks weeks on Sundays
