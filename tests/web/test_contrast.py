"""Text contrast of the stylesheets, from their CSS custom properties: 4.5:1 or more (WCAG AA) in the light
and the dark theme alike.

Every rule that sets a text colour and a background from the theme's properties is checked as that pair;
a rule that sets only a text colour is checked on each surface text sits on (page, card, table header).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_CSS = ROOT / "static" / "css" / "app.css"
STYLES = [APP_CSS, *sorted((ROOT / "templates").glob("*/_style.html"))]
SURFACES = ("bg", "surface", "surface-2")
AA = 4.5
COLOR = re.compile(r"(?<![-\w])color:\s*var\(--([\w-]+)\)")
BACKGROUND = re.compile(r"background(?:-color)?:\s*var\(--([\w-]+)\)")


def theme() -> dict[str, tuple[str, str]]:
    """--name -> (light, dark) from the :root block's light-dark() pairs."""
    css = APP_CSS.read_text()
    root = css[css.index(":root {") : css.index("}", css.index(":root {"))]
    pairs = re.findall(r"--([\w-]+):\s*light-dark\((#[0-9a-fA-F]{6}),\s*(#[0-9a-fA-F]{6})\)", root)
    return {name: (light, dark) for name, light, dark in pairs}


def luminance(hex_colour: str) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rules() -> list[tuple[str, str, str]]:
    """(file:selector, text property, background property or "") for each rule with a themed text colour."""
    found = []
    for path in STYLES:
        css = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
            text = COLOR.search(body)
            if text is None:
                continue
            background = BACKGROUND.search(body)
            where = f"{path.name}: {' '.join(selector.split())}"
            found.append((where, text.group(1), background.group(1) if background else ""))
    return found


def test_the_theme_is_parsed():
    colours = theme()
    assert {"text", "muted", "accent", "accent-soft", "ok-soft", *SURFACES} <= set(colours)
    assert len(rules()) > 20
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#2563eb", "#e8efff") == pytest.approx(4.48, abs=0.01)  # a pair just under AA


@pytest.mark.parametrize("side", [0, 1], ids=["light", "dark"])
def test_every_themed_text_colour_reaches_aa(side):
    colours = theme()
    failures = []
    for where, text, background in rules():
        for surface in (background,) if background else SURFACES:
            if text not in colours or surface not in colours:
                continue
            ratio = contrast(colours[text][side], colours[surface][side])
            if ratio < AA:
                failures.append(f"{where}: --{text} on --{surface} is {ratio:.2f}:1")
    assert failures == []


def test_stage_badges_use_the_theme():
    """Fixed colours cannot be right in both themes (the dark theme's stage badges were 3.1-3.8:1)."""
    style = (ROOT / "templates" / "registry" / "_style.html").read_text()
    for stage in ("production", "staging", "archived", "stale"):
        rule = re.search(rf"\.stage-{stage}\s*\{{([^}}]*)\}}", style).group(1)
        assert COLOR.search(rule) and BACKGROUND.search(rule), stage
