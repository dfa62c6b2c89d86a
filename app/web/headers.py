"""Response headers added unless the response already has them, in one pass over its headers.

werkzeug's `Headers.setdefault` scans the header list up to three times and raises (and catches) a
KeyError for every header it adds; the hooks that harden and label every response add about a dozen,
on every request.
"""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.datastructures import Headers


def add_missing(headers: Headers, pairs: Iterable[tuple[str, str]]) -> None:
    """Add each (name, value) whose name the headers lack (case-insensitive, as setdefault), in order."""
    present = {name.lower() for name, _ in headers}
    missing = [(name, value) for name, value in pairs if name.lower() not in present]
    if missing:
        headers.extend(missing)
