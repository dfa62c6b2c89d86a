"""Times relative to now, as the storage layer stamps them."""

from __future__ import annotations

import datetime as dt

from app.storage import utcnow


def at(hours_ago: float = 0.0) -> dt.datetime:
    """The storage clock's now, `hours_ago` hours back."""
    return utcnow() - dt.timedelta(hours=hours_ago)
