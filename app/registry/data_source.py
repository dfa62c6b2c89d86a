"""The data a deployment forecasts from: recorded at first set-up, changed only by an explicit switch.

A model of one dataset must never replace a model of another because a command was started without
(or with another) STORECAST_DATA. So the first command that trains, or `make run`'s check, records the
data source in the registry (the data_sources table, append-only: the newest row is current) and in a
small file of the instance configuration. Every later command that would train or register compares
its data with the record and stops, naming the recorded source and the one command that switches
(`flask models switch-data`), which trains a model of the new data, makes it production and archives
the versions of the old data with the reason.

Identity is the data's lineage (its stores and covariates): the same files in another directory are
the same data. The registry's record wins; the instance file is rewritten to match it, and seeds an
empty registry (a new database for the same deployment keeps its data choice).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import select

from app.forecasting.data import Dataset
from app.registry import experiment, lineage, versions
from app.storage import DataSource, Storage, production_row

log = logging.getLogger(__name__)

SWITCH = "flask models switch-data"
DIRECTORY, SYNTHETIC = "directory", "synthetic"


@dataclass(frozen=True)
class Source:
    """One data source: a directory of Kaggle CSVs or the embedded synthetic dataset, and its lineage."""

    kind: str
    source: str
    lineage: str | None = None
    recorded_at: str | None = None
    recorded_by: str | None = None
    reason: str = ""

    @classmethod
    def of(cls, dataset: Dataset, data_dir: str | Path | None) -> Source:
        """The source a command was given: `data_dir` (resolved) or the synthetic default."""
        if data_dir:
            return cls(DIRECTORY, str(Path(data_dir).resolve()), dataset.lineage())
        return cls(SYNTHETIC, dataset.source, dataset.lineage())

    @property
    def name(self) -> str:
        """What may be shown to anyone: a directory's last part, never the server's path."""
        if self.kind == DIRECTORY:
            return PurePath(self.source.replace("\\", "/")).name or self.source
        return self.source

    def describe(self, public: bool = False) -> str:
        shown = self.name if public else self.source
        return f"the directory {shown}" if self.kind == DIRECTORY else f"the synthetic dataset {shown}"

    def switch_command(self, public: bool = False) -> str:
        """The one command that makes this source the deployment's data."""
        if self.kind == DIRECTORY:
            return f"{SWITCH} --data {self.name if public else self.source}"
        return f"{SWITCH} --synthetic"

    def same_data(self, other: Source) -> bool:
        if self.lineage and other.lineage:
            return self.lineage == other.lineage
        return (self.kind, self.source) == (other.kind, other.source)


class DataSourceMismatch(versions.RegistryError):
    """A command was given other data than the deployment's: nothing was trained or registered."""

    status = 409

    def __init__(self, recorded: Source, given: Source, *, public: bool = False) -> None:
        self.recorded, self.given = recorded, given
        when = f" on {recorded.recorded_at[:10]}" if recorded.recorded_at else ""
        by = f" by {recorded.recorded_by}" if recorded.recorded_by else ""
        use = (
            f"pass --data {recorded.name if public else recorded.source} (or set STORECAST_DATA to it)"
            if recorded.kind == DIRECTORY
            else "leave --data and STORECAST_DATA unset"
        )
        super().__init__(
            f"this deployment forecasts from {recorded.describe(public)} (recorded{when}{by}), "
            f"not from {given.describe(public)}: nothing was trained and production is unchanged. "
            f"To keep the recorded data, {use}. "
            f"To switch to the new data, run `{given.switch_command(public)}`: it trains a model of it, "
            "makes it production and archives the versions of the recorded data"
        )


def _row_source(row: DataSource) -> Source:
    return Source(
        row.kind,
        row.source,
        row.lineage,
        row.recorded_at.isoformat(timespec="seconds") if row.recorded_at else None,
        row.recorded_by,
        row.reason or "",
    )


def recorded(storage: Storage, name: str) -> Source | None:
    """The registry's current record (the newest row), or None before the first set-up."""
    with storage.session() as session:
        row = session.scalars(
            select(DataSource).where(DataSource.name == name).order_by(DataSource.id.desc()).limit(1)
        ).first()
        return _row_source(row) if row is not None else None


def add_record(session: Any, name: str, source: Source, *, by: str, reason: str) -> None:
    """Append a record in the caller's transaction (a switch adds it with the new production version)."""
    session.add(
        DataSource(
            name=name,
            kind=source.kind,
            source=source.source[:512],
            lineage=source.lineage,
            recorded_by=by[:64],
            reason=reason,
        )
    )


def read_file(path: str | Path | None) -> Source | None:
    """The instance file's record, or None when there is none (or it cannot be read: logged)."""
    if not path or not Path(path).exists():
        return None
    try:
        data = json.loads(Path(path).read_text())
        fields = ("kind", "source", "lineage", "recorded_at", "recorded_by")
        source = Source(**{key: data.get(key) for key in fields})
        if source.kind not in (DIRECTORY, SYNTHETIC) or not isinstance(source.source, str):
            raise ValueError(f"kind {source.kind!r} or source {source.source!r} is not a data source")
        return source
    except (OSError, ValueError, TypeError) as error:
        log.warning("cannot read the data source file %s: %s", path, error)
        return None


def write_file(path: str | Path | None, source: Source) -> None:
    """Write the record next to the instance configuration, atomically (a temporary file renamed)."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {key: value for key, value in asdict(source).items() if key != "reason"}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".data-source-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(fields, out, indent=1)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _from_production(storage: Storage, name: str) -> tuple[Source | None, str]:
    """What production was trained on, for a registry that predates the record (upgraded deployments)."""
    with storage.session() as session:
        row = production_row(session, name)
        if row is None:
            return None, ""
        data_lineage, source = lineage.data_of(session, row)
        label = f"v{row.version}"
    base = lineage.base_source(source)
    if not base:
        return None, ""
    kind = SYNTHETIC if base.startswith("synthetic(") else DIRECTORY
    return Source(kind, base, data_lineage), f"the data of production {label}"


def ensure(
    storage: Storage,
    name: str,
    given: Source,
    *,
    instance_file: str | Path | None,
    by: str,
    public: bool = False,
) -> Source:
    """The deployment's data source after checking that `given` is it; DataSourceMismatch otherwise.

    Without a record, one is made: from the instance file, else from production's data (a registry
    that predates the record), else from `given` (the first set-up).
    """
    current = recorded(storage, name)
    if current is None:
        seed, reason = read_file(instance_file), "from the instance configuration"
        if seed is None:
            seed, reason = _from_production(storage, name)
        if seed is None:
            seed, reason = given, "first set-up"
        with storage.session() as session:
            add_record(session, name, seed, by=by, reason=reason)
        log.info("recorded the deployment's data: %s (%s)", seed.describe(), reason)
        current = recorded(storage, name)
        assert current is not None
    on_file = read_file(instance_file)
    if on_file is None or (on_file.kind, on_file.source, on_file.lineage) != (
        current.kind,
        current.source,
        current.lineage,
    ):
        write_file(instance_file, current)
    if not current.same_data(given):
        raise DataSourceMismatch(current, given, public=public)
    return current


def switch_reason(old: Source | None, new: Source, by: str, when: str) -> str:
    """Why the versions of the old data were archived: who, when, old source -> new source (names only)."""
    return f"data switched by {by} at {when}: {old.name if old else 'unrecorded data'} -> {new.name}"


def switch(
    storage: Storage,
    name: str,
    dataset: Dataset,
    given: Source,
    *,
    instance_file: str | Path | None,
    models_dir: str | Path,
    kind: str,
    params: dict[str, Any] | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Make `given` the deployment's data: train a model of it, register it as production, archive
    every other version with the reason and record the new source, in one transaction.

    The same data at another path only records the new path (no training, nothing archived).
    Returns {"version": the new version or None, "old": Source | None, "new": Source, "reason": str}.
    """
    by = by or versions.default_actor()
    old = recorded(storage, name) or read_file(instance_file) or _from_production(storage, name)[0]
    if old is not None and old.same_data(given):
        if (old.kind, old.source) == (given.kind, given.source):
            raise versions.RegistryError(f"this deployment already forecasts from {given.describe()}")
        reason = f"the same data (lineage {given.lineage}) moved: {old.source} -> {given.source}"
        with storage.session() as session:
            add_record(session, name, given, by=by, reason=reason)
        write_file(instance_file, recorded(storage, name) or given)
        return {"version": None, "old": old, "new": given, "reason": reason}
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    reason = switch_reason(old, given, by, when)
    version = experiment.train_and_register(
        storage,
        dataset,
        kind,
        model_name=name,
        models_dir=models_dir,
        params=params,
        stage="production",
        by=by,
        reason=reason,
        retire_reason=reason,
        also=lambda session: add_record(session, name, given, by=by, reason=reason),
    )
    write_file(instance_file, recorded(storage, name) or given)
    log.info("%s: v%s is production", reason, version["version"])
    return {"version": version, "old": old, "new": given, "reason": reason}
