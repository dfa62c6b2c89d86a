"""Why this number, for the forecast page: the core's components (app/forecasting/explain.py) as a
waterfall, one sentence, CSV columns, and the what-if's sensitivity as words.

Nothing is computed here but sums and wording: the components and the comparisons come from the core.
"""

from __future__ import annotations

from typing import Any

from app.forecasting.explain import COMPONENTS
from app.forecasting.inputs import COVARIATES
from app.web import charts
from app.web.csv_io import PREDICTION_COLUMNS

CHART_LABELS = {
    "last_year": "Last year, smoothed",
    "trend": "Trend",
    "holiday": "Holiday, calendar",
    "covariates": "Covariates",
    "model": "Other corrections",
}
SHORT_LABELS = {
    "last_year": "last year",
    "trend": "trend",
    "holiday": "holiday and calendar",
    "covariates": "covariates",
    "model": "other model corrections",
}
CSV_COLUMNS = (*PREDICTION_COLUMNS, "last_year_week", "last_year_sales", *(f"from_{c}" for c in COMPONENTS))
BARELY = 0.01  # a driver moving the forecast by less than 1% barely matters


def totals(predictions: list[dict[str, Any]]) -> dict[str, float] | None:
    """The components summed over the weeks (they add up to the total forecast)."""
    if not predictions or any(p.get("components") is None for p in predictions):
        return None
    return {name: round(sum(p["components"][name] for p in predictions), 2) for name in COMPONENTS}


def sentence(parts: dict[str, float]) -> str:
    """The components in words: 'Last year (smoothed) $46,800; trend +2% (+$936); holiday and calendar
    −$1,200; ...' (the trend also as a
    share of last year's value when there is one)."""
    words = [f"Last year (smoothed) ${parts['last_year']:,.0f}"]
    for name in COMPONENTS[1:]:
        text = f"{SHORT_LABELS[name]} {charts.signed_dollars(parts[name])}"
        if name == "trend" and parts["last_year"] > 0:
            share = parts["trend"] / parts["last_year"]
            text = f"trend {share:+.0%} ({charts.signed_dollars(parts['trend'])})"
        words.append(text)
    total = sum(parts.values())
    return "; ".join(words) + f": forecast ${total:,.0f}."


def waterfall(parts: dict[str, float], description: str) -> str:
    steps = [(CHART_LABELS[name], parts[name]) for name in COMPONENTS]
    return charts.waterfall_chart(steps, "Forecast", description=description)


def csv_rows(predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's predictions with their components as from_* columns (for CSV_COLUMNS)."""
    return [
        {**p, **{f"from_{name}": value for name, value in (p.get("components") or {}).items()}}
        for p in predictions
    ]


def _amount(value: Any, unit: str) -> str:
    """A covariate's value as a planner reads it: $21,366, $3.45/gal, 87 °F, 7.8%, 215.5 (an index)."""
    if unit == "$":
        return f"${value:,.0f}"
    if unit == "$/gal":
        return f"${value:,.2f}/gal"
    if unit == "%":
        return f"{value:,.1f}%"
    if unit == "°F":
        return f"{value:,.0f} °F"
    return f"{value:,.1f}"


def _effect(difference: float, scale: float) -> dict[str, Any]:
    return {
        "signed": charts.signed_dollars(difference),
        "share": difference / scale,
        "barely": abs(difference) < BARELY * scale,
    }


def _little_weight(ranges: list[dict[str, Any]]) -> str | None:
    """One sentence naming the covariates (the markdowns together) whose whole seen range moves the
    forecast by less than 1%: the data gave them little weight, and setting them changes little."""
    weak = [r for r in ranges if r["barely"]]
    if not weak:
        return None
    markdowns = [r["name"].removeprefix("markdown") for r in weak if r["name"].startswith("markdown")]
    every_markdown = len(markdowns) == sum(1 for r in ranges if r["name"].startswith("markdown"))
    names = [r["label"].lower() for r in weak if not r["name"].startswith("markdown")]
    if markdowns:
        listed = (
            "markdowns"
            if every_markdown
            else f"markdown{'s' if len(markdowns) > 1 else ''} " + _and(markdowns)
        )
        names.insert(0, listed)
    subject = _and(names)
    return (
        f"{subject[0].upper()}{subject[1:]} explained little of this store's past sales; over the values "
        "seen here the forecast barely moves (less than 1%)."
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sensitivity(what_if: dict[str, Any] | None, total: float) -> dict[str, Any] | None:
    """The what-if in words: for every covariate the range of the forecast over the values seen in
    this store's data, with a sentence for those the data gave little weight; and, when the planner set
    values, the difference against the model's assumptions, per driver, each marked when it barely
    matters (under 1% of the forecast) or lies outside what the store has seen."""
    if not what_if:
        return None
    scale = max(abs(total), 1.0)
    ranges = []
    for r in what_if.get("ranges") or []:
        covariate = COVARIATES[r["name"]]
        low, high = sorted((r["at_low"], r["at_high"]))
        most = max(abs(low), abs(high))
        ranges.append(
            {
                **r,
                "label": covariate.label,
                "unit": covariate.unit,
                "low_text": _amount(r["seen_low"], covariate.unit),
                "high_text": _amount(r["seen_high"], covariate.unit),
                "from": charts.signed_dollars(low),
                "to": charts.signed_dollars(high),
                "most": f"${most:,.0f}",
                "barely": most < BARELY * scale,
            }
        )
    drivers = []
    for d in what_if["drivers"]:
        covariate = COVARIATES.get(d["name"])
        label, unit = (covariate.label, covariate.unit) if covariate else ("Holiday week", "")
        seen = d.get("seen")
        note = None
        if seen and d.get("outside_seen"):
            note = (
                f"outside what this store has seen ({_amount(seen[0], unit)} to {_amount(seen[1], unit)} "
                "in 90% of its weeks): the model answers as it did at the edge of its data"
            )
        drivers.append({**d, "label": label, "unit": unit, "note": note, **_effect(d["difference"], scale)})
    return {
        **what_if,
        **_effect(what_if["difference"], scale),
        "drivers": drivers,
        "ranges": ranges,
        "little_weight": _little_weight(ranges),
    }
