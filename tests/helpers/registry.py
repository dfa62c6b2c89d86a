"""Model versions in a test app's registry, and artifact files to register (or corrupt)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from app.registry import versions
from app.storage import ModelVersion, StageChange


def register_production(app, artifact) -> None:
    """Put an artifact into the registry as the production version (as the first train does)."""
    with app.extensions["storage"].session() as session:
        version = ModelVersion(
            name=app.config["MODEL_NAME"],
            version=1,
            stage="production",
            artifact_path=str(artifact.path),
            artifact_sha256=artifact.sha256,
            model_kind=artifact.metadata.get("kind", "hgb"),
            metrics=artifact.metadata.get("backtest", {}),
        )
        session.add(version)
        session.flush()
        session.add(StageChange(version_id=version.id, to_stage="production", changed_by="tests"))


def register(app, artifact, stage=None, by="tests", reason=""):
    """Register an artifact through the registry service, as `flask train` does."""
    return versions.register_version(
        app.extensions["storage"],
        app.config["MODEL_NAME"],
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind=artifact.metadata.get("kind", "hgb"),
        metrics=artifact.metadata.get("backtest") or {},
        stage=stage,
        by=by,
        reason=reason,
    )


def copy_artifact(artifact, directory: Path, stem: str):
    """The same trained model under another file name: a distinct artifact with the same hash."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}{artifact.path.suffix}"
    shutil.copyfile(artifact.path, path)
    metadata_path = artifact.metadata_path
    if metadata_path and Path(metadata_path).exists():
        metadata_path = directory / f"{stem}{Path(metadata_path).suffix or '.json'}"
        shutil.copyfile(artifact.metadata_path, metadata_path)
    return dataclasses.replace(artifact, path=path, metadata_path=metadata_path)


def flip_bytes(path: Path, count: int = 16) -> None:
    """Corrupt a file in place (the middle bytes inverted), as a bad disk or a tamperer would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
