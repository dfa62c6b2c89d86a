"""Plain JSON values from what numpy, pandas and the core produce: one cleaner for metadata, JSON
columns and answers alike."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_PLAIN = frozenset({int, str, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Plain JSON types only, for the JSON columns and answers: NaN and infinities become null, numpy
    scalars Python numbers, dates ISO strings. Plain types are checked first: the prediction log
    cleans every input of every prediction with it."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind in _PLAIN:
        return value
    if isinstance(value, dict):
        return {key if type(key) is str else str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bool, int, str)):  # subclasses (numpy.bool_ is not one: it has .item())
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if hasattr(value, "tolist"):  # numpy array
        return jsonable(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)
