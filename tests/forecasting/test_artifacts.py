"""Artifacts: saved with hash and versions; tampering and version mismatches are refused."""

import json
import shutil

import pytest

from app.forecasting.artifacts import ArtifactError, library_versions, load_forecaster, sha256_file


@pytest.fixture
def artifact_copy(small_artifact, tmp_path):
    path = tmp_path / small_artifact.path.name
    shutil.copy(small_artifact.path, path)
    shutil.copy(small_artifact.metadata_path, path.with_suffix(".json"))
    return path


def test_round_trip_and_metadata(small_artifact):
    meta = json.loads(small_artifact.metadata_path.read_text())
    assert meta["artifact_sha256"] == small_artifact.sha256 == sha256_file(small_artifact.path)
    assert meta["library_versions"]["sklearn"] == library_versions()["sklearn"]
    for key in (
        "kind",
        "params",
        "features",
        "training_window",
        "data_fingerprint",
        "backtest",
        "reference",
        "residual_quantiles",
        "feature_importances",
    ):
        assert key in meta, key
    fc = load_forecaster(small_artifact.path, small_artifact.sha256)
    assert fc.metadata["artifact_sha256"] == small_artifact.sha256
    assert small_artifact.path.stat().st_size < 20e6


def test_tampered_file_is_refused(artifact_copy):
    with open(artifact_copy, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_forecaster(artifact_copy)


def test_unexpected_hash_is_refused(artifact_copy):
    with pytest.raises(ArtifactError, match="expected"):
        load_forecaster(artifact_copy, expected_sha256="0" * 64)


@pytest.mark.parametrize("library", ["sklearn", "numpy", "pandas", "python"])
def test_version_mismatch_is_refused(artifact_copy, library):
    meta_path = artifact_copy.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["library_versions"][library] = "0.1.0"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=f"{library} 0.1.0 recorded"):
        load_forecaster(artifact_copy)


def test_missing_metadata_is_refused(artifact_copy):
    artifact_copy.with_suffix(".json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_forecaster(artifact_copy)
