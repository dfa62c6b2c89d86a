"""Downloads of what a page just showed: the rows a page computed are kept under a token for an hour,
so its "Download CSV" serves exactly those rows (no second forecast, no second prediction-log entry).

Files in the instance folder, like the batch results: every worker (gunicorn process) can serve them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600
TOKEN = re.compile(r"^[0-9a-f]{32}$")
FILENAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}\.csv$")


def _directory() -> Path:
    path = Path(current_app.instance_path) / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _prune(directory: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for old in directory.glob("*.csv"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


def keep(text: str | Iterable[str]) -> str:
    """Store a CSV a page offers for download (whole, or in parts written one after another); its token."""
    directory = _directory()
    _prune(directory)
    token = uuid.uuid4().hex
    with (directory / f"{token}.csv").open("w", encoding="utf-8", newline="") as handle:
        for part in [text] if isinstance(text, str) else text:
            handle.write(part)
    return token


def kept_path(token: str) -> Path | None:
    """The kept CSV's file (a large one is sent from disk), or None when malformed, unknown or expired."""
    if not TOKEN.match(token):
        return None
    path = _directory() / f"{token}.csv"
    try:
        if path.stat().st_mtime < time.time() - KEEP_SECONDS:
            return None
    except OSError:
        return None
    return path


def fetch(token: str) -> str | None:
    """The kept CSV, or None when the token is malformed, unknown or expired."""
    path = kept_path(token)
    try:
        return None if path is None else path.read_text(encoding="utf-8")
    except OSError:
        return None
