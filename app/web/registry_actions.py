"""What the registry's pages and its API both do after, or to show, a stage change."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from app import extensions

log = logging.getLogger(__name__)


def refresh_holder() -> None:
    """This worker switches at once; the others within MODEL_REFRESH_SECONDS."""
    try:
        extensions.holder().refresh()
    except Exception:  # the stage change is committed; a load problem is the holder's to report
        log.exception("refresh after a stage change failed")


def serving() -> dict[str, Any]:
    holder = extensions.holder()
    with contextlib.suppress(Exception):  # ModelUnavailable: nothing to serve yet; status() says why
        holder.get()
    return holder.status()
