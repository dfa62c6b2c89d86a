"""Save and load model artifacts: a joblib file, its JSON metadata, its SHA-256 and the library
versions it was made with. Loading refuses a file whose hash or library versions do not match,
before unpickling anything."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from app.forecasting.metadata import ModelMetadata
from app.jsonable import jsonable

log = logging.getLogger(__name__)
# What a pickled Forecaster holds and where its classes live; a change to either bumps it, and an
# artifact of another format is refused by name (retrain it) rather than half-loaded.
FORMAT = 3


class ArtifactError(Exception):
    """An artifact that must not be loaded (tampered, wrong versions, missing files).

    Its message names files by their name only: it reaches answers, pages and alerts that anyone
    may read, where a server path would tell an attacker where the models live.
    """


def artifact_problem(error: BaseException, path: str | Path) -> str:
    """Why an artifact failed to load, naming its files without their server directory.

    An ArtifactError already says it that way; an OSError or an unpickling error may carry the whole
    path (PermissionError's text does), so every form of it is cut to the file name.
    """
    path = Path(path)
    text = str(error) or type(error).__name__
    for whole in (path.with_suffix(".json"), path.with_suffix(".joblib"), path):
        text = text.replace(str(whole), whole.name)
    parent = str(path.parent)
    if parent not in ("", "."):
        text = text.replace(parent + "/", "").replace(parent, "the models directory")
    return text


@dataclass
class ArtifactInfo:
    path: Path
    metadata_path: Path
    sha256: str
    metadata: ModelMetadata


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_mismatches(recorded: dict[str, str]) -> list[str]:
    """Differences that make unpickling unsafe: sklearn exact; numpy, pandas, python major.minor."""
    current = library_versions()
    problems = []
    for name in ("sklearn", "numpy", "pandas", "python"):
        want, have = recorded.get(name), current[name]
        if want is None:
            problems.append(f"{name}: not recorded in the metadata")
            continue
        same = want == have if name == "sklearn" else want.split(".")[:2] == have.split(".")[:2]
        if not same:
            problems.append(f"{name} {want} recorded, {have} installed")
    return problems


def write_artifact(
    forecaster: Any, metadata: ModelMetadata, models_dir: str | Path, name: str
) -> ArtifactInfo:
    """models_dir/<name>-<UTC timestamp>.joblib and .json; the JSON records the joblib's hash."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = models_dir / f"{name}-{stamp}.joblib"
    k = 1
    while path.exists():
        path = models_dir / f"{name}-{stamp}-{k}.joblib"
        k += 1
    versions = library_versions()
    joblib.dump({"format": FORMAT, "versions": versions, "forecaster": forecaster}, path, compress=3)
    sha = sha256_file(path)
    meta = jsonable(
        {
            **metadata,
            "artifact": path.name,
            "artifact_sha256": sha,
            "library_versions": versions,
            "artifact_bytes": path.stat().st_size,
            "format": FORMAT,
        }
    )
    metadata_path = path.with_suffix(".json")
    metadata_path.write_text(json.dumps(meta, indent=1, sort_keys=False))
    log.info("wrote %s (%.1f MB, sha256 %s)", path, path.stat().st_size / 1e6, sha[:12])
    return ArtifactInfo(path=path, metadata_path=metadata_path, sha256=sha, metadata=meta)


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_path = path if path.suffix == ".json" else path.with_suffix(".json")
    if not meta_path.exists():
        raise ArtifactError(f"metadata file {meta_path.name} is missing")
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"metadata file {meta_path.name} is not valid JSON: {exc}") from None


def load_forecaster(path: str | Path, expected_sha256: str | None = None) -> Any:
    """Load a Forecaster after checking the file's SHA-256 and the library versions."""
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".joblib")
    if not path.exists():
        raise ArtifactError(f"artifact {path.name} does not exist")
    meta = read_metadata(path)
    actual = sha256_file(path)
    for label, want in (
        ("expected", expected_sha256),
        ("recorded in the metadata", meta.get("artifact_sha256")),
    ):
        if want and want != actual:
            raise ArtifactError(
                f"artifact {path.name} has SHA-256 {actual[:16]}…, {label} {want[:16]}…: the file was "
                "modified or replaced; refusing to load it"
            )
    if not meta.get("artifact_sha256") and not expected_sha256:
        raise ArtifactError(f"no SHA-256 to verify {path.name} against; refusing to load it")
    problems = version_mismatches(meta.get("library_versions") or {})
    if problems:
        raise ArtifactError(
            f"artifact {path.name} was made with other library versions ({'; '.join(problems)}); "
            "retrain it with the installed versions"
        )
    if meta.get("format") != FORMAT:
        raise ArtifactError(
            f"artifact {path.name} is of format {meta.get('format')}, this version of Storecast reads "
            f"format {FORMAT}: retrain it (flask train)"
        )
    payload = joblib.load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"artifact {path.name} is not a Storecast model (format {FORMAT})")
    problems = version_mismatches(payload.get("versions") or {})
    if problems:
        raise ArtifactError(
            f"artifact {path.name} was made with other library versions ({'; '.join(problems)})"
        )
    forecaster = payload["forecaster"]
    forecaster.metadata = {**forecaster.metadata, **meta}
    forecaster.version = str(meta.get("version") or forecaster.version)
    return forecaster
