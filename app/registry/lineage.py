"""Which data a model version was trained on, and whether two versions' data are the same.

A deployment forecasts from one dataset: a version is known by its data's lineage (a fingerprint of
the stores and covariates) and source. Versions registered before lineages were recorded only have
fallbacks (their training run, the artifact's sidecar), read here in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.storage import ActualSale, ModelVersion, Run, Storage, production_row

log = logging.getLogger(__name__)


def _sidecar(row: ModelVersion) -> dict[str, Any]:
    """The artifact's JSON metadata (display data only), or {} when it cannot be read."""
    return artifact_metadata(row.artifact_path)


def artifact_metadata(artifact_path: str) -> dict[str, Any]:
    """The JSON metadata beside an artifact, or {} when it cannot be read."""
    try:
        metadata = json.loads(Path(artifact_path).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def base_source(source: str | None) -> str | None:
    """A data source without what a retrain appends ("... + 12 actual_sales rows", "... through <date>")."""
    return re.split(r" \+ | through ", source, maxsplit=1)[0].strip() if source else None


def data_of(session: Session, row: ModelVersion) -> tuple[str | None, str | None]:
    """(lineage, source) a version was trained on: its registry row, else its run, else its metadata.

    Versions registered before lineages were recorded only have the fallbacks.
    """
    lineage, source = row.data_lineage, row.data_source
    if lineage and source:
        return lineage, source
    if not source and row.run_id is not None:
        run = session.get(Run, row.run_id)
        source = run.data_source if run is not None and run.data_source else None
    if not lineage or not source:
        metadata = _sidecar(row)
        lineage = lineage or metadata.get("data_lineage")
        source = source or metadata.get("data_source")
    return lineage, source


def same_data(old: tuple[str | None, str | None], new: tuple[str | None, str | None]) -> bool | None:
    """Whether two (lineage, source) pairs name the same data; None when neither says (unknown).

    Lineages decide when both are known; otherwise the sources, without a retrain's suffixes.
    """
    (old_lineage, old_source), (new_lineage, new_source) = old, new
    if old_lineage and new_lineage:
        return old_lineage == new_lineage
    if old_source and new_source:
        return base_source(old_source) == base_source(new_source)
    return None


def source_name(source: str | None) -> str:
    """A data source as anyone may see it: a directory's last part, never the server's path."""
    base = base_source(source)
    if not base:
        return "unknown data"
    return base if base.startswith("synthetic(") else (PurePath(base.replace("\\", "/")).name or base)


def _describe(lineage: str | None, source: str | None) -> str:
    return f"{source or 'unknown data'} (lineage {lineage or 'unknown'})"


def production_lineage(storage_or_session: Storage | Session, name: str) -> str | None:
    """The data lineage of `name`'s production version (None: no production, or none recorded).

    Actual sales are tagged with it when they arrive, so they are scored against that data's models only.
    """
    if isinstance(storage_or_session, Session):
        row = production_row(storage_or_session, name)
        return data_of(storage_or_session, row)[0] if row is not None else None
    with storage_or_session.session() as session:
        row = production_row(session, name)
        return data_of(session, row)[0] if row is not None else None


def check_data(storage: Storage, name: str, lineage: str | None, source: str | None) -> dict[str, Any]:
    """Whether production was trained on the data named (by its lineage and source).

    status: "no-production", "same", "different", or "unknown" (production predates lineage records
    and names no source). `flask models check-data` and `make run` decide from it whether to train.
    """
    with storage.session() as session:
        row = production_row(session, name)
        if row is None:
            return {
                "status": "no-production",
                "production": None,
                "production_lineage": None,
                "production_source": None,
                "lineage": lineage,
                "source": source,
                "message": f"no production model yet: train one on {_describe(lineage, source)}",
            }
        old_lineage, old_source = data_of(session, row)
        label = f"v{row.version}"
    same = same_data((old_lineage, old_source), (lineage, source))
    status = {True: "same", False: "different", None: "unknown"}[same]
    messages = {
        "same": f"production {label} was trained on this data: {_describe(lineage, source)}",
        "different": (
            f"production {label} was trained on {_describe(old_lineage, old_source)}, "
            f"not on the data configured: {_describe(lineage, source)}"
        ),
        "unknown": f"production {label} records no data lineage or source: cannot tell its data",
    }
    return {
        "status": status,
        "production": label,
        "production_lineage": old_lineage,
        "production_source": old_source,
        "lineage": lineage,
        "source": source,
        "message": messages[status],
    }


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def staleness(storage: Storage, name: str, stale_after_weeks: int) -> dict[str, Any] | None:
    """How far production's training data lags the newest actual sales of its lineage.

    A model whose data ends more than `stale_after_weeks` weeks before the newest actual week is
    stale: the sales it has never seen keep arriving, so it should be retrained. None: no production.
    """
    with storage.session() as session:
        row = production_row(session, name)
        if row is None:
            return None
        lineage, _ = data_of(session, row)
        run = session.get(Run, row.run_id) if row.run_id is not None else None
        data_end = run.data_end if run is not None and run.data_end else None
        if data_end is None:
            metadata = _sidecar(row)
            window = (
                metadata.get("training_window") if isinstance(metadata.get("training_window"), dict) else {}
            )
            data_end = _as_date(window.get("end") or metadata.get("origin"))
        newest = (
            session.scalar(select(func.max(ActualSale.week)).where(ActualSale.lineage == lineage))
            if lineage
            else None
        )
        label = f"v{row.version}"
    newest = _as_date(newest)
    weeks_behind = (newest - data_end).days // 7 if newest and data_end else None
    return {
        "version": label,
        "lineage": lineage,
        "data_end": data_end.isoformat() if data_end else None,
        "newest_actual_week": newest.isoformat() if newest else None,
        "weeks_behind": max(weeks_behind, 0) if weeks_behind is not None else None,
        "stale_after_weeks": int(stale_after_weeks),
        "stale": weeks_behind is not None and weeks_behind > stale_after_weeks,
    }
