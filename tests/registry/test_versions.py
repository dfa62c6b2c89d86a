"""Versions and stages: numbering, the first-is-production rule, promote/rollback/archive and history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.registry import versions
from app.storage import ModelVersion, StageChange
from tests.helpers.registry import flip_bytes, register

NAME = "storecast"


def production_count(storage) -> int:
    with storage.session() as session:
        return session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.stage == "production")
        )


def stages(storage) -> dict[int, str]:
    return {row["version"]: row["stage"] for row in versions.list_versions(storage, NAME)}


def test_first_version_is_production_then_staging(registry_app, storage, artifacts):
    first = register(registry_app, artifacts[0])
    second = register(registry_app, artifacts[1])
    assert (first["version"], first["stage"]) == (1, "production")
    assert (second["version"], second["stage"]) == (2, "staging")
    assert versions.production_version(storage, NAME)["version"] == 1
    history = versions.stage_history(storage, NAME)
    assert [(h["label"], h["from_stage"], h["to_stage"]) for h in history] == [
        ("v2", None, "staging"),
        ("v1", None, "production"),
    ]
    assert history[1]["reason"] == "first model"


def test_promote_and_rollback_round_trip_with_full_history(registry_app, storage, artifacts):
    for artifact in artifacts:
        register(registry_app, artifact)  # v1 production, v2 and v3 staging

    versions.promote(storage, NAME, "v2", by="alice", reason="better holiday weeks")
    assert stages(storage) == {1: "archived", 2: "production", 3: "staging"}
    assert production_count(storage) == 1

    back = versions.rollback(storage, NAME, by="bob", reason="v2 spikes on store 4")
    assert back["version"] == 1
    assert stages(storage) == {1: "production", 2: "archived", 3: "staging"}

    versions.promote(storage, NAME, 3, by="carol", reason="retrained")
    again = versions.rollback(storage, NAME, by="dave")
    assert again["version"] == 1  # the version that was production before v3
    assert production_count(storage) == 1

    history = versions.stage_history(storage, NAME)
    described = [(h["label"], h["from_stage"], h["to_stage"], h["changed_by"]) for h in reversed(history)]
    assert described == [
        ("v1", None, "production", "tests"),
        ("v2", None, "staging", "tests"),
        ("v3", None, "staging", "tests"),
        ("v1", "production", "archived", "alice"),
        ("v2", "staging", "production", "alice"),
        ("v2", "production", "archived", "bob"),
        ("v1", "archived", "production", "bob"),
        ("v1", "production", "archived", "carol"),
        ("v3", "staging", "production", "carol"),
        ("v3", "production", "archived", "dave"),
        ("v1", "archived", "production", "dave"),
    ]
    reasons = {(h["label"], h["to_stage"], h["changed_by"]): h["reason"] for h in history}
    assert reasons[("v2", "production", "alice")] == "better holiday weeks"
    assert reasons[("v1", "production", "bob")] == "v2 spikes on store 4"
    assert reasons[("v1", "production", "dave")] == "rollback from v3"
    # one version's own history
    assert [h["to_stage"] for h in versions.stage_history(storage, NAME, 2)] == [
        "archived",
        "production",
        "staging",
    ]


def test_history_is_append_only(registry_app, storage, artifacts):
    register(registry_app, artifacts[0])
    register(registry_app, artifacts[1])
    with storage.session() as session:
        before = [(c.id, c.to_stage) for c in session.scalars(select(StageChange).order_by(StageChange.id))]
    versions.promote(storage, NAME, 2, by="x")
    with storage.session() as session:
        after = [(c.id, c.to_stage) for c in session.scalars(select(StageChange).order_by(StageChange.id))]
    assert after[: len(before)] == before and len(after) == len(before) + 2


def test_refusals(registry_app, storage, artifacts):
    with pytest.raises(versions.RegistryError, match="no earlier production"):
        versions.rollback(storage, NAME, by="x")
    register(registry_app, artifacts[0])
    register(registry_app, artifacts[1])
    with pytest.raises(versions.RegistryError, match="already in production"):
        versions.promote(storage, NAME, 1, by="x")
    with pytest.raises(versions.RegistryError, match="is in production"):
        versions.archive(storage, NAME, 1, by="x")
    with pytest.raises(versions.VersionNotFound):
        versions.promote(storage, NAME, 9, by="x")
    with pytest.raises(versions.VersionNotFound):
        versions.promote(storage, NAME, "latest", by="x")
    versions.archive(storage, NAME, "v2", by="x", reason="not needed")
    with pytest.raises(versions.RegistryError, match="already archived"):
        versions.archive(storage, NAME, 2, by="x")
    assert stages(storage) == {1: "production", 2: "archived"}
    # an archived version can still be promoted (the long way back)
    versions.promote(storage, NAME, 2, by="x")
    assert stages(storage) == {1: "archived", 2: "production"}


def test_promote_refuses_a_tampered_artifact(registry_app, storage, artifacts):
    register(registry_app, artifacts[0])
    register(registry_app, artifacts[1])
    flip_bytes(artifacts[1].path)
    with pytest.raises(versions.ArtifactIntegrityError, match="modified or corrupted"):
        versions.promote(storage, NAME, 2, by="x")
    assert stages(storage) == {1: "production", 2: "staging"}
    artifacts[0].path.unlink()
    register(registry_app, artifacts[2])
    versions.promote(storage, NAME, 3, by="x")
    with pytest.raises(versions.ArtifactIntegrityError, match="cannot be read"):
        versions.rollback(storage, NAME, by="x")  # v1's file is gone: do not roll back onto nothing
    assert versions.production_version(storage, NAME)["version"] == 3


def test_registering_into_production_archives_the_old_one(registry_app, storage, artifacts):
    register(registry_app, artifacts[0])
    register(registry_app, artifacts[1], stage="production", reason="hotfix")
    assert stages(storage) == {1: "archived", 2: "production"}
    assert production_count(storage) == 1


def test_version_numbers_are_per_name(registry_app, storage, artifacts):
    register(registry_app, artifacts[0])
    other = versions.register_version(
        storage,
        "other",
        artifact_path=artifacts[1].path,
        artifact_sha256=artifacts[1].sha256,
        model_kind="rf",
    )
    assert other["version"] == 1 and other["stage"] == "production"
    assert production_count(storage) == 2  # one per name


def test_parse_version():
    assert versions.parse_version("v12") == 12
    assert versions.parse_version(" 3 ") == 3
    assert versions.parse_version(4) == 4
    for bad in ("", "v", "0", "-1", "three", "v1.2"):
        with pytest.raises(versions.VersionNotFound):
            versions.parse_version(bad)


def test_concurrent_promotions_leave_exactly_one_production(tmp_path, artifacts):
    """Two workers promoting different versions at the same moment: one wins, then the other; never two."""
    import threading

    from tests.helpers.app import make_test_app

    apps = [make_test_app(tmp_path), make_test_app(tmp_path)]
    for artifact in artifacts:
        register(apps[0], artifact)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def promote(app, version):
        barrier.wait()
        try:
            for _ in range(5):
                versions.promote(app.extensions["storage"], NAME, version, by=f"worker-{version}")
                versions.rollback(app.extensions["storage"], NAME, by=f"worker-{version}")
        except versions.RegistryError as error:  # "already in production" is a fair outcome of a race
            errors.append(error)

    threads = [threading.Thread(target=promote, args=(apps[i], i + 2)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    storage = apps[0].extensions["storage"]
    assert production_count(storage) == 1
    # the history replays to the final stages: every change started from the stage it recorded
    state: dict[int, str] = {}
    for change in reversed(versions.stage_history(storage, NAME)):
        assert state.get(change["version"]) == change["from_stage"]
        state[change["version"]] = change["to_stage"]
    assert state == stages(storage)
    assert not [e for e in errors if not isinstance(e, versions.RegistryError)]
