"""Registry events for listeners (the MLflow mirror); a failing listener never breaks the registry."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
# Per storage (per app and database), so two apps in one process do not hear each other.
_listeners: weakref.WeakKeyDictionary[Any, list[Listener]] = weakref.WeakKeyDictionary()


def subscribe(storage: Any, listener: Listener) -> None:
    _listeners.setdefault(storage, []).append(listener)


def emit(storage: Any, event: str, payload: dict[str, Any]) -> None:
    """Tell the storage's listeners: run_finished, run_failed, version_registered, stage_changed."""
    for listener in _listeners.get(storage, ()):
        try:
            listener(event, payload)
        except Exception:  # noqa: BLE001 - a mirror that is down must not fail a promotion
            log.exception("registry listener failed on %s", event)
