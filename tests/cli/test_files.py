"""Files the commands write appear whole or not at all: the previous file stays until the new one is
complete, and a failure leaves nothing half-written behind."""

from __future__ import annotations

import os

import pytest

from app.cli.files import written_atomically


def test_the_file_appears_only_once_complete(tmp_path):
    out = tmp_path / "plan.csv"
    out.write_text("old,complete\n")
    os.chmod(out, 0o640)
    with written_atomically(out) as handle:
        handle.write("new,")
        assert out.read_text() == "old,complete\n"  # still the previous file while writing
        handle.write("complete\n")
    assert out.read_text() == "new,complete\n"
    assert out.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]


@pytest.mark.parametrize("before", ["old,complete\n", None])
def test_a_failure_while_writing_leaves_the_previous_file_or_none(tmp_path, before):
    out = tmp_path / "plan.csv"
    if before is not None:
        out.write_text(before)
    with pytest.raises(RuntimeError), written_atomically(out) as handle:
        handle.write("half,")
        raise RuntimeError("disk full")
    assert (out.read_text() if out.exists() else None) == before
    assert [p.name for p in tmp_path.iterdir()] == (["plan.csv"] if before else [])


def test_a_new_file_gets_the_usual_permissions(tmp_path):
    out = tmp_path / "new.csv"
    with written_atomically(out) as handle:
        handle.write("x\n")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
