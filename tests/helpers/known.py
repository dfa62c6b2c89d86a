"""What the served model can answer: valid and invalid stores, departments and weeks, read from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Known:
    """Valid and invalid inputs for the served model, read from the model itself."""

    store: int  # the first store
    dept: int  # its first department
    dept2: int  # its second department
    other_store: int  # a store whose departments differ from `store`'s
    other_depts: tuple[int, ...]
    missing_dept: int  # a department of `store` that `other_store` has no history for (cold start)
    unknown_store: int
    week: str  # the first week the model forecasts (the week after its history)
    last_week: str  # the last one (52 weeks after its history)
    after: str  # the week after the last
    before: str  # the model's origin: history, not forecastable

    def weeks_after(self, n: int) -> str:
        return (dt.date.fromisoformat(self.week) + dt.timedelta(weeks=n)).isoformat()

    def days_before_week(self, n: int) -> str:
        return (dt.date.fromisoformat(self.week) - dt.timedelta(days=n)).isoformat()

    def fill(self, value: Any) -> Any:
        """Replace "<name>" strings (in dicts and lists too) by this object's attribute `name`."""
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
            return getattr(self, value[1:-1])
        return value


def cold_pair(forecaster: Any) -> tuple[int, int]:
    """A store and a department it has no history for that other stores sell: a cold start."""
    return next(
        (store, dept)
        for store in forecaster.stores()
        for dept in forecaster.all_departments()
        if dept not in forecaster.departments(store)
    )
