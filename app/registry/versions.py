"""Versions and stages: register, promote, roll back and archive, with an append-only history.

Invariants, each kept inside one transaction:
- versions are numbered 1, 2, 3... per model name;
- a version is in exactly one stage: staging, production or archived;
- at most one production version per name at any time (and exactly one once the first is registered:
  production can only be replaced, never archived away);
- every stage change appends a StageChange row (when, from, to, by whom, why); nothing rewrites it.

Concurrent writers (two gunicorn workers, a CLI and the API) are serialised by taking a write lock on the
name's rows before reading them (`_lock`): SQLite's RESERVED lock, PostgreSQL's row locks.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.forecasting.artifacts import sha256_file
from app.registry import events, gate
from app.registry.lineage import data_of, same_data, source_name
from app.registry.training_runs import clean_metrics
from app.storage import (
    DataSource,
    ModelVersion,
    StageChange,
    Storage,
    parse_row_id,
    production_row,
)

log = logging.getLogger(__name__)

STAGES = ("staging", "production", "archived")


class RegistryError(ValueError):
    """A registry action that cannot be done as asked; `status` is the HTTP status it maps to."""

    status = 409


class VersionNotFound(RegistryError):
    status = 404


class ArtifactIntegrityError(RegistryError):
    """The artifact file is missing or its SHA-256 is not the one registered."""

    status = 409


class WorseThanProduction(RegistryError):
    """A person asked to promote a version whose backtest is worse than production's: they must say
    `force` (the page's confirmation, the API's field, the CLI's flag) so a regression is never a slip."""

    status = 409

    def __init__(self, comparison: dict[str, Any]) -> None:
        super().__init__(f"{comparison['message']}: confirm with force to promote it anyway")
        self.comparison = comparison


def default_actor() -> str:
    """The OS user running the CLI: who a stage change is attributed to when nobody says otherwise."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return f"cli:uid{os.getuid()}" if hasattr(os, "getuid") else "cli"


def parse_version(value: str | int) -> int:
    """3, "3" or "v3" -> 3."""
    number = parse_row_id(str(value).strip().lower().removeprefix("v"))
    if number is None:
        raise VersionNotFound(f"not a version number: {value!r} (expected e.g. 3 or v3)")
    return number


def verify_artifact(path: str | Path, expected_sha256: str) -> None:
    """Raise ArtifactIntegrityError unless the file exists and hashes to what was registered.

    The message names the file only: it reaches the registry's pages and API answers.
    """
    name = Path(path).name
    try:
        actual = sha256_file(path)
    except OSError as error:
        raise ArtifactIntegrityError(f"artifact {name} cannot be read: {error.strerror or error}") from error
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"artifact {name} has SHA-256 {actual[:12]}..., registered {expected_sha256[:12]}...: "
            "it was modified or corrupted"
        )


def version_to_dict(row: ModelVersion) -> dict[str, Any]:
    metrics = row.metrics or {}
    return {
        "name": row.name,
        "version": row.version,
        "label": f"v{row.version}",
        "stage": row.stage,
        "model_kind": row.model_kind,
        "run_id": row.run_id,
        "artifact_path": row.artifact_path,
        "artifact_sha256": row.artifact_sha256,
        "created_at": row.created_at.isoformat(timespec="seconds") if row.created_at else None,
        "metrics": metrics,
        "wmae": metrics.get("wmae"),
        "data_source": row.data_source,
        "data_lineage": row.data_lineage,
    }


def change_to_dict(change: StageChange, version: int) -> dict[str, Any]:
    return {
        "id": change.id,
        "version": version,
        "label": f"v{version}",
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "changed_at": change.changed_at.isoformat(timespec="seconds") if change.changed_at else None,
        "changed_by": change.changed_by,
        "reason": change.reason or "",
    }


def _lock(session: Session, name: str) -> None:
    """Take the write lock before reading, so that two promotions cannot both see the old production."""
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.name == name)
        .values(name=ModelVersion.name)
        .execution_options(synchronize_session=False)
    )


def _get(session: Session, name: str, version: int) -> ModelVersion:
    row = session.scalars(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    ).first()
    if row is None:
        raise VersionNotFound(f"{name} v{version} does not exist")
    return row


def _move(session: Session, row: ModelVersion, to_stage: str, by: str, reason: str) -> None:
    if to_stage not in STAGES:
        raise RegistryError(f"unknown stage {to_stage!r}")
    session.add(
        StageChange(
            version_id=row.id, from_stage=row.stage, to_stage=to_stage, changed_by=by[:64], reason=reason
        )
    )
    session.info.setdefault("stage_changes", []).append(
        {
            "name": row.name,
            "version": row.version,
            "from_stage": row.stage,
            "to_stage": to_stage,
            "by": by,
            "reason": reason,
        }
    )
    row.stage = to_stage
    session.flush()


def _emit_changes(storage: Storage, changes: list[dict[str, Any]]) -> None:
    for change in changes:
        events.emit(storage, "stage_changed", change)


def register_version(
    storage: Storage,
    name: str,
    *,
    artifact_path: str | Path,
    artifact_sha256: str,
    model_kind: str,
    metrics: dict[str, Any] | None = None,
    run_id: int | None = None,
    stage: str | None = None,
    by: str | None = None,
    reason: str = "",
    data_source: str | None = None,
    data_lineage: str | None = None,
    retire_reason: str | None = None,
    also: Callable[[Session], None] | None = None,
) -> dict[str, Any]:
    """Create the next version of `name`. stage=None: production when there is none yet, else staging,
    whatever data it was trained on: only a person promotes, and only `flask models switch-data`
    changes the deployment's data.

    Registering straight into production (stage="production") archives the current production version;
    with `retire_reason` every other staging and production version is archived with that reason (a
    data switch). `also` writes more rows in the same transaction.
    """
    if stage is not None and stage not in ("staging", "production"):
        raise RegistryError("a new version starts in staging or production")
    if retire_reason is not None and stage != "production":
        raise RegistryError("only a version registered into production retires the others")
    by = by or default_actor()
    for attempt in range(3):
        try:
            with storage.session() as session:
                _lock(session, name)
                current = production_row(session, name)
                number = (
                    session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name))
                    or 0
                ) + 1
                target = stage or ("production" if current is None else "staging")
                note = ""
                if target == "staging" and current is not None:
                    old = data_of(session, current)
                    if same_data(old, (data_lineage, data_source)) is False:
                        note = (
                            f"trained on other data than production v{current.version}: "
                            f"{source_name(data_source)} (lineage {data_lineage or 'unknown'})"
                        )
                row = ModelVersion(
                    name=name,
                    version=number,
                    run_id=run_id,
                    stage=target,
                    artifact_path=str(artifact_path),
                    artifact_sha256=artifact_sha256,
                    model_kind=model_kind,
                    metrics=clean_metrics(metrics),
                    data_source=data_source[:512] if data_source else None,
                    data_lineage=data_lineage,
                )
                if retire_reason is not None:
                    others = session.scalars(
                        select(ModelVersion)
                        .where(ModelVersion.name == name, ModelVersion.stage != "archived")
                        .order_by(ModelVersion.version)
                    ).all()
                    for other in others:
                        _move(session, other, "archived", by, retire_reason)
                elif target == "production" and current is not None:
                    _move(session, current, "archived", by, f"replaced by v{number}")
                session.add(row)
                session.flush()
                first_reason = reason or ("first model" if current is None and target == "production" else "")
                if note:
                    first_reason = f"{first_reason}; {note}" if first_reason else note
                session.add(
                    StageChange(
                        version_id=row.id,
                        from_stage=None,
                        to_stage=target,
                        changed_by=by[:64],
                        reason=first_reason,
                    )
                )
                if also is not None:
                    also(session)
                result = version_to_dict(row)
                changes = session.info.get("stage_changes", [])
            log.info("registered %s v%d as %s", name, number, target)
            events.emit(storage, "version_registered", {**result, "by": by, "reason": first_reason})
            _emit_changes(storage, changes)
            return result
        except IntegrityError:  # another writer took the same number first (no rows to lock yet)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _recorded_lineage(session: Session, name: str) -> str | None:
    """The lineage of the deployment's recorded data source (None: nothing recorded or no lineage)."""
    return session.scalar(
        select(DataSource.lineage).where(DataSource.name == name).order_by(DataSource.id.desc()).limit(1)
    )


def _check_deployment_data(session: Session, name: str, row: ModelVersion) -> None:
    """Refuse to put a version of other data than the deployment's into production."""
    recorded = _recorded_lineage(session, name)
    lineage, source = data_of(session, row)
    if recorded and lineage and lineage != recorded:
        raise RegistryError(
            f"{name} v{row.version} was trained on other data ({source_name(source)}, lineage {lineage}) "
            "than this deployment forecasts from: `flask models switch-data` switches the data"
        )


def _backtest_comparison(
    row: ModelVersion, current: ModelVersion | None, comparison: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """How `row` compares with production on the same weeks when it is worse (gate.py), else None.

    `comparison` is one the caller scored on the data (gate.compare); without it only stored backtests
    of the same window are compared: figures of different weeks never refuse a promotion.
    """
    if current is None or current.id == row.id:
        return None
    if comparison is None:
        comparison = gate.stored(version_to_dict(row), version_to_dict(current))
    return comparison if comparison.get("worse") else None


def promote(
    storage: Storage,
    name: str,
    version: int | str,
    *,
    by: str | None = None,
    reason: str = "",
    verify: bool = True,
    force: bool = False,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make `version` production; the previous production version is archived. Both steps or neither.

    With verify (the default) the artifact's hash is checked first: a tampered file is never promoted.
    A version that scores worse than production on the same weeks (`comparison`, from gate.compare,
    else their stored backtests of one window) raises WorseThanProduction unless `force` (the automatic
    gates pass it: they have measured the candidate on their own terms). A version of other data than
    the deployment's recorded data source is refused.
    """
    number = parse_version(version)
    by = by or default_actor()
    with storage.session() as session:
        _lock(session, name)
        row = _get(session, name, number)
        if row.stage == "production":
            raise RegistryError(f"{name} v{number} is already in production")
        _check_deployment_data(session, name, row)
        current = production_row(session, name)
        worse = _backtest_comparison(row, current, comparison)
        if worse is not None and not force:
            raise WorseThanProduction(worse)
        if verify:
            verify_artifact(row.artifact_path, row.artifact_sha256)
        if worse is not None:
            reason = f"{reason}; " if reason else ""
            reason += f"forced: {worse['message']}"
        if current is not None:
            _move(session, current, "archived", by, reason or f"replaced by v{number}")
        _move(session, row, "production", by, reason)
        result = version_to_dict(row)
        changes = session.info.get("stage_changes", [])
    _emit_changes(storage, changes)
    log.info("%s promoted %s v%d to production (%s)", by, name, number, reason or "no reason given")
    return result


def previous_production(session: Session, name: str, current_id: int | None) -> ModelVersion | None:
    """The version that was production most recently before the current one (from the history)."""
    query = (
        select(StageChange.version_id)
        .join(ModelVersion, ModelVersion.id == StageChange.version_id)
        .where(ModelVersion.name == name, StageChange.to_stage == "production")
        .order_by(StageChange.id.desc())
    )
    for version_id in session.scalars(query):
        if version_id != current_id:
            return session.get(ModelVersion, version_id)
    return None


def rollback(storage: Storage, name: str, *, by: str | None = None, reason: str = "") -> dict[str, Any]:
    """Put back the version that was production before the current one; the current one is archived.

    Rolling back twice returns to where you started (it undoes the rollback), like switching back.
    """
    by = by or default_actor()
    with storage.session() as session:
        _lock(session, name)
        current = production_row(session, name)
        target = previous_production(session, name, current.id if current else None)
        if target is None:
            raise RegistryError(f"{name} has no earlier production version to roll back to")
        _check_deployment_data(session, name, target)
        verify_artifact(target.artifact_path, target.artifact_sha256)
        rollback_reason = reason or (f"rollback from v{current.version}" if current else "rollback")
        if current is not None:
            _move(session, current, "archived", by, rollback_reason)
        _move(session, target, "production", by, rollback_reason)
        result = version_to_dict(target)
        changes = session.info.get("stage_changes", [])
    _emit_changes(storage, changes)
    log.info("%s rolled %s back to v%d", by, name, result["version"])
    return result


def archive(
    storage: Storage, name: str, version: int | str, *, by: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """Retire a staging version. Production cannot be archived: promote or roll back to replace it."""
    number = parse_version(version)
    by = by or default_actor()
    with storage.session() as session:
        _lock(session, name)
        row = _get(session, name, number)
        if row.stage == "production":
            raise RegistryError(
                f"{name} v{number} is in production: "
                "promote another version or roll back instead of archiving it"
            )
        if row.stage == "archived":
            raise RegistryError(f"{name} v{number} is already archived")
        _move(session, row, "archived", by, reason)
        result = version_to_dict(row)
        changes = session.info.get("stage_changes", [])
    _emit_changes(storage, changes)
    return result


def list_versions(storage: Storage, name: str) -> list[dict[str, Any]]:
    """Newest first."""
    with storage.session() as session:
        rows = session.scalars(
            select(ModelVersion).where(ModelVersion.name == name).order_by(ModelVersion.version.desc())
        )
        return [version_to_dict(row) for row in rows]


def get_version(storage: Storage, name: str, version: int | str) -> dict[str, Any]:
    with storage.session() as session:
        return version_to_dict(_get(session, name, parse_version(version)))


def production_version(storage: Storage, name: str) -> dict[str, Any] | None:
    with storage.session() as session:
        row = production_row(session, name)
        return version_to_dict(row) if row else None


def stage_history(storage: Storage, name: str, version: int | str | None = None) -> list[dict[str, Any]]:
    """Every stage change of `name` (or of one version), newest first."""
    query = (
        select(StageChange, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == StageChange.version_id)
        .where(ModelVersion.name == name)
        .order_by(StageChange.id.desc())
    )
    if version is not None:
        query = query.where(ModelVersion.version == parse_version(version))
    with storage.session() as session:
        return [change_to_dict(change, number) for change, number in session.execute(query)]
