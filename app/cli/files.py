"""Files the commands write for the user (--out, --forecasts): checked before any work, written whole
or not at all.

A path whose directory is missing or not writable is refused as the options are read (OutputFile),
not after minutes of training with a traceback.

A command killed while writing (kill -9, a full disk, Ctrl-C) must not leave a 0-byte file or a CSV
cut in the middle of a row where a complete one is expected: the text goes to a temporary file in
the same directory (same filesystem, so the rename is atomic) and os.replace puts it in place once
it is complete and flushed to disk. A kill leaves the previous file, or none, at the path; only a
hidden `.NAME.*.tmp` file beside it may stay behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click


def _mode_for(path: Path) -> int:
    """The permissions the file would have got from open(): the old file's, else 0o666 minus umask."""
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def written_atomically(path: Path) -> Iterator[IO[str]]:
    """A text handle whose content appears at `path` only once the block finishes without error."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class OutputFile(click.Path):
    """A file a command writes: not a directory, and its directory exists and is writable."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dir_okay=False, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        parent = Path(os.fsdecode(path)).parent
        if not parent.is_dir():
            self.fail(f"directory {parent} does not exist", param, ctx)
        if not os.access(parent, os.W_OK):
            self.fail(f"directory {parent} is not writable", param, ctx)
        return path
