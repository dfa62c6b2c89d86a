"""What the registry's pages and its API both do after, or to show, a stage change."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import current_app

from app import extensions
from app.registry import promotion, versions

log = logging.getLogger(__name__)


STAGE_CHANGES = ("promote", "rollback", "archive")


def change_stage(
    action: str, version: str | None, *, by: str | None, reason: str, force: bool = False
) -> dict[str, Any]:
    """One stage change asked for on the Models page or through the API, then this worker switches.

    A promotion goes through the gate against the deployment's recorded data (the CLI does the same);
    rollback and archive compare nothing. Raises the registry's errors for the caller to word.
    """
    storage, name = extensions.storage(), current_app.config["MODEL_NAME"]
    if action == "promote":
        source_file = current_app.config.get("DATA_SOURCE_FILE")
        row = promotion.promote(storage, name, version, source_file, by=by, reason=reason, force=force)
    elif action == "rollback":
        row = versions.rollback(storage, name, by=by, reason=reason)
    elif action == "archive":
        row = versions.archive(storage, name, version, by=by, reason=reason)
    else:
        raise ValueError(f"action must be one of {', '.join(STAGE_CHANGES)}, got {action!r}")
    _refresh_holder()
    return row


def _refresh_holder() -> None:
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
