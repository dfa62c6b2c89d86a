"""Posting the pages' forms as a browser does: the CSRF token read from the page, HTMX's header."""

from __future__ import annotations

import re

HTMX = {"HX-Request": "true"}


def csrf_token(client, path: str = "/") -> str:
    """The CSRF token of the form on the page at `path`."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client, data: dict, headers: dict | None = None, path: str = "/"):
    """Post `data` to the form at `path` with the page's CSRF token."""
    return client.post(path, data={"csrf_token": csrf_token(client, path), **data}, headers=headers or {})
