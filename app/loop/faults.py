"""Faults put into a replay's data: what the loop's checks must catch, on a copy kept in memory.

A fault is written `kind:key=value,...`, for example `store_level:store=20,size=-0.5,start=2012-05-04`.
It changes the actual sales or covariates the replay feeds the loop from its `start` week on (for
`weeks` weeks, or for good), never the files. The kinds:

- store_level: every department of `store` scaled by 1 + `size` (-0.5 halves the store);
- dept_collapse: department `dept` of `store` scaled by 1 + `size` (default -0.9);
- dept_shift: department `dept` of every store scaled by 1 + `size`;
- spike: `store` (or one `dept` of it) scaled by 1 + `size` for one week;
- covariate: `column` of `stores` (joined by +) broken: `mode` offset (adds `size`), stuck (repeats the
  last good value) or missing (sent empty), for `weeks` weeks (default 4);
- actuals_missing: no actual sales sent for the `start` week;
- actuals_doubled: the `start` week's sales counted twice (every row doubled);
- actuals_repeated: the week before `start` sent again as the `start` week.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting.data import Dataset

COVARIATE_FAULT_COLUMNS = ("temperature", "fuel_price", "cpi", "unemployment")
COVARIATE_MODES = ("offset", "stuck", "missing")
KINDS: dict[str, tuple[str, ...]] = {  # kind: the keys it requires besides start
    "store_level": ("store", "size"),
    "dept_collapse": ("store", "dept"),
    "dept_shift": ("dept", "size"),
    "spike": ("store", "size"),
    "covariate": ("stores", "column", "mode"),
    "actuals_missing": (),
    "actuals_doubled": (),
    "actuals_repeated": (),
}
OPTIONAL = {"weeks", "dept", "size"}
DEFAULT_SIZE = {"dept_collapse": -0.9}
DEFAULT_WEEKS = {"spike": 1, "covariate": 4} | dict.fromkeys(
    ("actuals_missing", "actuals_doubled", "actuals_repeated"), 1
)


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message names the part and the reason."""


@dataclass(frozen=True)
class Fault:
    kind: str
    start: dt.date
    size: float = 0.0
    store: int | None = None
    stores: tuple[int, ...] = ()
    dept: int | None = None
    column: str | None = None
    mode: str | None = None
    weeks: int | None = None  # None: for good
    spec: str = ""

    @property
    def affected_stores(self) -> tuple[int, ...]:
        return self.stores or ((self.store,) if self.store is not None else ())

    def active(self, week: dt.date) -> bool:
        """Whether the fault touches the week (from start, for `weeks` weeks or for good)."""
        if week < self.start:
            return False
        return self.weeks is None or (week - self.start).days < 7 * self.weeks

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "size": self.size,
            "start": self.start.isoformat(),
            "stores": list(self.affected_stores),
            "dept": self.dept,
            "column": self.column,
            "mode": self.mode,
            "weeks": self.weeks,
        }


def _int(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FaultSpecError(f"{key}: {value!r} is not a whole number") from None
    if number < 1:
        raise FaultSpecError(f"{key}: must be 1 or more, got {number}")
    return number


def parse_fault(spec: str) -> Fault:
    """`kind:key=value,...` as a Fault; FaultSpecError naming the part that is wrong."""
    kind, sep, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise FaultSpecError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))) if sep else ():
        key, eq, value = part.partition("=")
        if not eq or not value.strip():
            raise FaultSpecError(f"{part!r}: write key=value")
        if key.strip() in values:
            raise FaultSpecError(f"{key.strip()}: given twice")
        values[key.strip()] = value.strip()
    allowed = {"start", *KINDS[kind], *OPTIONAL}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise FaultSpecError(f"{unknown[0]}: not a setting of {kind} (use {', '.join(sorted(allowed))})")
    missing = [k for k in ("start", *KINDS[kind]) if k not in values]
    if missing:
        raise FaultSpecError(f"{', '.join(missing)}: required by {kind}")
    try:
        start = dt.date.fromisoformat(values["start"])
    except ValueError:
        raise FaultSpecError(f"start: {values['start']!r} is not a date (YYYY-MM-DD)") from None
    fields: dict[str, Any] = {"kind": kind, "start": start, "spec": spec.strip()}
    if "size" in values:
        try:
            fields["size"] = float(values["size"])
        except ValueError:
            raise FaultSpecError(f"size: {values['size']!r} is not a number") from None
        if not np.isfinite(fields["size"]):
            raise FaultSpecError(f"size: {values['size']!r} is not a number")
        if kind != "covariate" and fields["size"] < -1:
            raise FaultSpecError(f"size: {fields['size']} would make sales negative (at least -1)")
    else:
        fields["size"] = DEFAULT_SIZE.get(kind, 0.0)
    for key in ("store", "dept", "weeks"):
        if key in values:
            fields[key] = _int(key, values[key])
    if "stores" in values:
        fields["stores"] = tuple(_int("stores", s) for s in values["stores"].split("+"))
    if kind == "covariate":
        if values["column"] not in COVARIATE_FAULT_COLUMNS:
            known = ", ".join(COVARIATE_FAULT_COLUMNS)
            raise FaultSpecError(f"column: {values['column']!r} is not one of {known}")
        if values["mode"] not in COVARIATE_MODES:
            raise FaultSpecError(f"mode: {values['mode']!r} is not one of {', '.join(COVARIATE_MODES)}")
        fields["column"], fields["mode"] = values["column"], values["mode"]
        if fields["mode"] == "offset" and "size" not in values:
            raise FaultSpecError("size: required by an offset")
    fields.setdefault("weeks", DEFAULT_WEEKS.get(kind))
    return Fault(**fields)


def parse_faults(specs: Iterable[str]) -> list[Fault]:
    return [parse_fault(spec) for spec in specs]


def unknown_entity(fault: Fault, dataset: Dataset) -> str | None:
    """Why the fault would touch nothing in the dataset (a store or department it does not have)."""
    sales = dataset.sales
    for store in fault.affected_stores:
        if not (sales["store"] == store).any():
            return f"store: the data has no store {store}"
    if fault.dept is not None:
        rows = sales[sales["dept"] == fault.dept]
        if fault.store is not None:
            rows = rows[rows["store"] == fault.store]
        if rows.empty:
            where = f" in store {fault.store}" if fault.store is not None else ""
            return f"dept: the data has no department {fault.dept}{where}"
    return None


def _in_weeks(dates: pd.Series, fault: Fault) -> np.ndarray:
    day = dates.dt.date
    return np.array([fault.active(d) for d in day], dtype=bool) if len(day) else np.zeros(0, dtype=bool)


def _scaled_sales(sales: pd.DataFrame, fault: Fault) -> pd.DataFrame:
    mask = _in_weeks(sales["date"], fault)
    if fault.store is not None:
        mask &= sales["store"].to_numpy() == fault.store
    if fault.dept is not None:
        mask &= sales["dept"].to_numpy() == fault.dept
    sales.loc[mask, "weekly_sales"] = sales.loc[mask, "weekly_sales"] * (1.0 + fault.size)
    return sales


def _feed_week(sales: pd.DataFrame, fault: Fault) -> pd.DataFrame:
    week = pd.Timestamp(fault.start)
    if fault.kind == "actuals_missing":
        return sales[sales["date"] != week]
    if fault.kind == "actuals_doubled":
        sales.loc[sales["date"] == week, "weekly_sales"] *= 2.0
        return sales
    before = sales[sales["date"] == week - pd.Timedelta(weeks=1)]  # actuals_repeated
    resent = before.assign(date=week, is_holiday=sales.loc[sales["date"] == week, "is_holiday"].any())
    return pd.concat([sales[sales["date"] != week], resent], ignore_index=True)


def _covariates(features: pd.DataFrame, fault: Fault) -> pd.DataFrame:
    column = str(fault.column)
    mask = _in_weeks(features["date"], fault) & features["store"].isin(fault.affected_stores).to_numpy()
    if fault.mode == "offset":
        features.loc[mask, column] = features.loc[mask, column] + fault.size
    elif fault.mode == "missing":
        features.loc[mask, column] = np.nan
    else:  # stuck at the last good value
        for store in fault.affected_stores:
            good = features[(features["store"] == store) & (features["date"] < pd.Timestamp(fault.start))]
            last = good.sort_values("date")[column].dropna()
            rows = mask & (features["store"] == store).to_numpy()
            features.loc[rows, column] = float(last.iloc[-1]) if len(last) else np.nan
    return features


def apply_faults(dataset: Dataset, faults: Iterable[Fault]) -> Dataset:
    """A copy of the dataset with the faults in its sales and covariates (the files are not touched)."""
    sales, features = dataset.sales.copy(), dataset.features.copy()
    for fault in faults:
        if fault.kind == "covariate":
            features = _covariates(features, fault)
        elif fault.kind.startswith("actuals_"):
            sales = _feed_week(sales, fault)
        else:
            sales = _scaled_sales(sales, fault)
    sales = sales.sort_values(["store", "dept", "date"], kind="stable").reset_index(drop=True)
    return dataclasses.replace(dataset, sales=sales, features=features)


def names_entity(fault: Fault, alert: Mapping[str, Any]) -> bool:
    """Whether an alert (kind, store, dept, details) names what the fault broke."""
    details = alert.get("details") or {}
    stores = {int(s) for s in details.get("stores") or []}
    if alert.get("store") is not None:
        stores.add(int(alert["store"]))
    depts = {int(d) for d in details.get("departments") or []}
    if alert.get("dept") is not None:
        depts.add(int(alert["dept"]))
    if fault.kind == "covariate":
        return details.get("column") == fault.column and set(fault.affected_stores) <= stores
    if fault.kind.startswith("actuals_"):
        return alert.get("kind") == "actuals_feed" and details.get("week") == fault.start.isoformat()
    if fault.kind == "dept_shift":
        return fault.dept in depts
    if fault.store not in stores:
        return False
    if fault.kind == "dept_collapse" or (fault.kind == "spike" and fault.dept is not None):
        return fault.dept in depts
    return True
