"""Altair charts rendered to SVG on the server (vl-convert): no chart runtime, no CDN, works without JS.

The rendering every chart shares (charts.py builds them): text and axes in `currentColor`, so the page's
light or dark theme colours them; an <svg role="img"> named for screen readers; a wide and a narrow
drawing for the CSS to choose from. The first conversion in a process costs ~0.6 s (vl-convert starts
its JS engine); warm() pays it in a background thread at start-up, and identical specs come from a
small cache.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from html import escape

import altair as alt
import pandas as pd

log = logging.getLogger(__name__)

# vl-convert sizes the chart around its labels with the fonts it finds here; the browser then draws them
# in its own. "system-ui" was measured narrower than the browser drew it (a 224 px label overran the
# left edge by 20 px): DejaVu Sans (Linux) and Verdana (macOS, Windows) are as wide as any, so a label
# never comes out wider than it was measured.
FONT = "DejaVu Sans, Verdana, system-ui, sans-serif"

_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()
_warmed = threading.Event()
_warming = threading.Lock()


def _config(chart: alt.TopLevelMixin, font_size: int = 11) -> alt.TopLevelMixin:
    return (
        chart.configure(background="transparent", font=FONT)
        .configure_axis(
            labelColor="currentColor",
            titleColor="currentColor",
            domainColor="currentColor",
            tickColor="currentColor",
            gridColor="currentColor",
            gridOpacity=0.12,
            domainOpacity=0.4,
            tickOpacity=0.4,
            labelFontSize=font_size,
            titleFontSize=font_size + 1,
            labelOverlap=True,
        )
        .configure_legend(
            labelColor="currentColor",
            titleColor="currentColor",
            orient="bottom",
            labelFontSize=font_size,
            columnPadding=24,
            labelLimit=0,
        )
        .configure_title(color="currentColor", fontSize=14, anchor="start")
        .configure_view(stroke=None)
    )


def _title_text(chart: alt.TopLevelMixin) -> str:
    title = getattr(chart, "title", alt.Undefined)
    if isinstance(title, str):
        return title
    text = getattr(title, "text", None) if title is not alt.Undefined else None
    return text if isinstance(text, str) else ""


def to_svg(chart: alt.TopLevelMixin, description: str = "", font_size: int = 11) -> str:
    """The chart as an inline-able <svg> string (cached by spec), named for screen readers by
    `description` (else the chart's own title): an <svg role="img"> with aria-label and <title>."""
    spec = _config(chart, font_size).to_dict()
    label = description or _title_text(chart) or "Chart"
    key = json.dumps([spec, label], sort_keys=True, default=str)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    import vl_convert  # deferred: loading the Vega engine costs ~1 s, and API-only workers never render

    svg = vl_convert.vegalite_to_svg(spec)
    svg = _responsive(svg, label)
    with _LOCK:
        _CACHE[key] = svg
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _warmed.set()
    return svg


# A chart the browser scales to its container is only as legible as that scale allows: a wide chart
# shrunk to a phone's width draws its labels at a third of their size. Charts that matter on a phone
# are drawn twice, for a wide and a narrow container, and CSS (a container query on .chart) shows the
# one that fits, so that text stays at least 11 px on screen.
NARROW_WIDTH = 250  # the plot's width in the narrow drawing (a 375 px phone gives the chart ~310 px)
LEGIBLE_FONT = 13  # drawn at about 0.85-1.0 scale in either drawing


def wide_and_narrow(build: Callable[[bool], alt.TopLevelMixin], description: str) -> str:
    """Both drawings of a chart (`build(narrow)`), each in its own wrapper for the CSS to choose from."""
    wide = to_svg(build(False), description, font_size=LEGIBLE_FONT)
    narrow = to_svg(build(True), description, font_size=LEGIBLE_FONT)
    return f'<div class="chart-wide">{wide}</div><div class="chart-narrow">{narrow}</div>'


def legible(chart: alt.TopLevelMixin, description: str = "", narrow_width: int = NARROW_WIDTH) -> str:
    """A chart drawn wide as built and narrow at `narrow_width` (wide_and_narrow)."""

    def build(narrow: bool) -> alt.TopLevelMixin:
        return chart.properties(width=narrow_width) if narrow else chart

    return wide_and_narrow(build, description or _title_text(chart) or "Chart")


def _responsive(svg: str, label: str) -> str:
    """Let CSS scale the SVG to its container (the viewBox keeps the aspect ratio), and name it: a
    screen reader announces one image with this label instead of hundreds of marks."""
    text = escape(label)
    opening = f'<svg role="img" aria-label="{text}" preserveAspectRatio="xMinYMin meet" '
    svg = svg.replace("<svg ", opening, 1)
    end = svg.index(">", len(opening)) + 1
    return f"{svg[:end]}<title>{text}</title>{svg[end:]}"


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
