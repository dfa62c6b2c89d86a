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


def sensitivity(what_if: dict[str, Any] | None, total: float) -> dict[str, Any] | None:
    """The what-if in words: the difference against the model's assumptions, per driver, each marked
    when it barely matters (under 1% of the forecast)."""
    if not what_if:
        return None
    scale = max(abs(total), 1.0)

    def effect(difference: float) -> dict[str, Any]:
        return {
            "signed": charts.signed_dollars(difference),
            "share": difference / scale,
            "barely": abs(difference) < BARELY * scale,
        }

    drivers = []
    for d in what_if["drivers"]:
        covariate = COVARIATES.get(d["name"])
        label, unit = (covariate.label, covariate.unit) if covariate else ("Holiday week", "")
        drivers.append({**d, "label": label, "unit": unit, **effect(d["difference"])})
    return {**what_if, **effect(what_if["difference"]), "drivers": drivers}
