"""What the planner pages say when they refuse a form: the API's field-named messages put in a
planner's words ("Pick a week between 2 Nov 2012 and 25 Oct 2013"). The JSON API keeps its own."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import ValidationError

from app.forecasting.inputs import COVARIATES
from app.web.api.errors import error_message

WEEK_FIELDS = ("date", "start")


def day(value: Any) -> str:
    """2 Nov 2012: a date as a planner writes it."""
    value = value.date() if isinstance(value, dt.datetime) or hasattr(value, "to_pydatetime") else value
    return f"{value.day} {value:%b %Y}"


def when(value: Any) -> str:
    """7 Dec 2026, 01:13: a moment as a reader says it (the pages give UTC beside it)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return f"{value.day} {value:%b %Y, %H:%M}"


def weeks(count: int) -> str:
    """A number of weeks in words: "1 week", "13 weeks"."""
    return f"{count} week{'' if count == 1 else 's'}"


def weeks_ahead(label: Any) -> str:
    """A horizon bucket's label in words: "1" -> "1 week ahead", "2-4" -> "2–4 weeks ahead"."""
    text = str(label).replace("-", "–")
    return f"{text} week{'' if text == '1' else 's'} ahead"


# The proper scores of the ranges as the pages name them: (figure, label, unit); one line says what each is.
SCORES: tuple[tuple[str, str, str], ...] = (
    ("interval_score_80", "Interval score, 80% range", "$"),
    ("interval_score_95", "Interval score, 95% range", "$"),
    ("wql_0.1", "Quantile loss, low end (10%)", "%"),
    ("wql_0.5", "Quantile loss, forecast (50%)", "%"),
    ("wql_0.9", "Quantile loss, high end (90%)", "%"),
)
SCORE_LINES = (
    "Interval score: the range's width plus a penalty for each actual that falls outside it, "
    "in dollars a week; lower is better.",
    "Quantile loss: how far actual sales fell on the wrong side of the range's low end, the forecast "
    "and the range's high end, as a share of sales; lower is better.",
)


def week_range(model: Any) -> str | None:
    try:
        first, last = model.valid_range()
    except Exception:  # noqa: BLE001 - no model, no range: the message keeps its own words
        return None
    return f"Pick a week between {day(first)} and {day(last)}"


def plain_number(value: Any) -> str:
    """A limit as a planner writes it: 10,000,000, not 1e+07."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{int(number):,}" if number.is_integer() else f"{number:,}"


def cell_words(kind: str, limits: dict[str, Any], example: str = "2012-11-02") -> str | None:
    """Pydantic's error `kind` for one value in the words the forms and the batch page use (None: none
    of ours); `limits` its ctx (le, ge, lt, gt), `example` a date to show."""
    if kind.startswith(("date", "datetime")):
        return f"Enter a date, such as {example}"
    if kind == "missing":
        return "Fill this in"
    if kind in ("int_parsing", "int_from_float"):
        return "Enter a whole number"
    if kind == "float_parsing":
        return "Enter a number"
    if kind == "finite_number":
        return "Enter a number (not infinity or NaN)"
    if kind == "bool_parsing":
        return "Enter TRUE or FALSE"
    bounds = {"less_than_equal": ("le", "Enter {} or less"), "greater_than_equal": ("ge", "Enter {} or more")}
    bounds |= {"less_than": ("lt", "Enter less than {}"), "greater_than": ("gt", "Enter more than {}")}
    if kind in bounds:
        key, text = bounds[kind]
        return text.format(plain_number(limits.get(key)))
    return None


def _pydantic_words(error: dict[str, Any], model: Any) -> str:
    kind = error.get("type", "")
    field = str(error["loc"][0]) if error.get("loc") else ""
    if kind.startswith(("date", "datetime")) and field not in WEEK_FIELDS:
        return error_message(error)
    example = day(model.valid_range()[0]) if model is not None else "2 Nov 2012"
    return cell_words(kind, error.get("ctx") or {}, example) or error_message(error)


def form_errors(error: ValidationError, model: Any) -> dict[str, str]:
    """A form's validation errors, one per top-level field, in words."""
    errors: dict[str, str] = {}
    for e in error.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else "form"
        errors.setdefault(name, _pydantic_words(e, model))
    return errors


def answer_errors(details: list[dict[str, Any]], message: str, model: Any) -> dict[str, str]:
    """The forecast's refusal (ApiError details) per field, in words: a week outside what the model
    forecasts names the weeks it does."""
    errors: dict[str, str] = {}
    for d in details:
        field, text = d.get("field", "form"), d["message"]
        if field in WEEK_FIELDS and ("origin" in text or ".." in text):
            text = week_range(model) or text
        elif field == "weeks" and ".." in text:
            last = model.valid_range()[1] if model is not None else None
            text = (
                f"The forecast must end by {day(last)}: pick fewer weeks or an earlier week" if last else text
            )
        errors.setdefault(field, text)
    return errors or {"form": message}


# The file's own column for each field a batch row's problem names (rows[3].is_holiday -> IsHoliday).
FILE_COLUMNS = {
    "store": "Store",
    "dept": "Dept",
    "date": "Date",
    "is_holiday": "IsHoliday",
    **{c.name: c.column for c in COVARIATES.values()},
}
# A batch's details carry pydantic's message, not its type: the type each message was written for (and
# the ctx key of the number it names), so that cell_words says it as the forms do.
MESSAGE_KINDS: tuple[tuple[re.Pattern[str], str, str | None], ...] = (
    (re.compile(r"^Input should be a valid integer"), "int_parsing", None),
    (re.compile(r"^Input should be a finite number"), "finite_number", None),
    (re.compile(r"^Input should be a valid (number|decimal)"), "float_parsing", None),
    (re.compile(r"^Input should be a valid (date|datetime)"), "date_parsing", None),
    (re.compile(r"^Input should be a valid boolean"), "bool_parsing", None),
    (re.compile(r"^Input should be less than or equal to (\S+)"), "less_than_equal", "le"),
    (re.compile(r"^Input should be greater than or equal to (\S+)"), "greater_than_equal", "ge"),
    (re.compile(r"^Field required"), "missing", None),
)


def row_errors(details: list[dict[str, Any]], model: Any) -> list[dict[str, Any]]:
    """A batch's per-row problems as a planner reads them: the file's column, pydantic's words turned
    into the forms' ("Enter a whole number"), a week outside what the model forecasts named in words."""
    wording = week_range(model)
    out = []
    for d in details:
        field, message = str(d.get("field", "")), str(d.get("message", ""))
        name = field.split(".", 1)[1] if field.startswith("rows[") and "." in field else field
        if wording and name == "date" and "between" in message:
            message = wording
        for pattern, kind, key in MESSAGE_KINDS:
            found = pattern.match(message)
            if found:
                message = cell_words(kind, {key: found[1]} if key else {}) or message
                break
        out.append({**d, "field": FILE_COLUMNS.get(name, name), "message": message})
    return out
