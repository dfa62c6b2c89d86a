"""The gate a person's promotion goes through, the same from the CLI, the models page and the API.

A promotion asked by hand is judged as the automatic gates judge a candidate: both models scored on
the same weeks of the deployment's own data (gate.compare), not by stored backtests of other windows.
Loading the data and scoring two models takes seconds, so a comparison is kept per pair of versions,
data source and count of ingested actual sales: the page's warning and the promotion it confirms
read one result, and new actual sales (or another pair) score anew.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import func, select

from app.forecasting.data import DataError, Dataset
from app.forecasting.synthetic import load_or_generate
from app.registry import data_source, gate, versions
from app.registry.actual_history import dataset_with_actuals
from app.storage import ActualSale, Storage

log = logging.getLogger(__name__)

_KEPT = 16
_comparisons: dict[tuple[Any, ...], dict[str, Any]] = {}
_lock = threading.Lock()


def deployment_source(storage: Storage, name: str, source_file: str | None) -> data_source.Source | None:
    """The recorded data source: the registry's record, else the instance file's."""
    return data_source.recorded(storage, name) or data_source.read_file(source_file)


def deployment_dataset(storage: Storage, name: str, source_file: str | None) -> tuple[Dataset | None, str]:
    """The recorded data source's dataset with the actual sales of its lineage, or (None, why not)."""
    source = deployment_source(storage, name, source_file)
    if source is None:
        return None, "no data source is recorded yet"
    try:
        dataset = load_or_generate(source.source if source.kind == data_source.DIRECTORY else None)
    except (DataError, OSError) as error:
        return None, f"{source.describe()} cannot be read: {error}"
    return dataset_with_actuals(dataset, storage), ""


def _actual_sales_count(storage: Storage) -> int:
    with storage.session() as session:
        return int(session.scalar(select(func.count()).select_from(ActualSale)) or 0)


def against_production(
    storage: Storage, name: str, version: int | str, source_file: str | None
) -> dict[str, Any] | None:
    """`version` scored against production on the same weeks of the deployment's data (gate.compare).

    None when there is no production version, `version` is production or not a version (the promotion
    itself says what is wrong with it).
    """
    production = versions.production_version(storage, name)
    try:
        candidate = versions.get_version(storage, name, version)
    except versions.RegistryError:
        return None
    if production is None or candidate["version"] == production["version"]:
        return None
    source = deployment_source(storage, name, source_file)
    key = (
        storage.url,
        name,
        candidate["version"],
        production["version"],
        candidate["artifact_sha256"],
        production["artifact_sha256"],
        source.describe() if source else None,
        _actual_sales_count(storage),
    )
    with _lock:
        if key in _comparisons:
            return _comparisons[key]
    dataset, why = deployment_dataset(storage, name, source_file)
    if dataset is None:
        log.warning("scoring %s on the data skipped: %s", candidate["label"], why)
    result = gate.compare(candidate, production, dataset)
    with _lock:
        while len(_comparisons) >= _KEPT:
            _comparisons.pop(next(iter(_comparisons)))
        _comparisons[key] = result
    return result


def promote(
    storage: Storage,
    name: str,
    version: int | str,
    source_file: str | None,
    *,
    by: str | None = None,
    reason: str = "",
    force: bool = False,
) -> dict[str, Any]:
    """Promote `version` through the gate on the same weeks; WorseThanProduction names them."""
    comparison = against_production(storage, name, version, source_file)
    row = versions.promote(storage, name, version, by=by, reason=reason, force=force, comparison=comparison)
    return {**row, "comparison": comparison}


def warning(
    storage: Storage, name: str, version: int | str, source_file: str | None
) -> dict[str, Any] | None:
    """The comparison the models page asks an admin to confirm, when `version` scores worse."""
    comparison = against_production(storage, name, version, source_file)
    return comparison if comparison is not None and comparison.get("worse") else None
