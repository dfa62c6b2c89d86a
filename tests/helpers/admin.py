"""The admin token of test apps: every write to the registry or to actual sales needs it."""

from __future__ import annotations

ADMIN_TOKEN = "s3cret-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def admin_headers(app) -> dict[str, str]:
    """Give `app` the admin token and return the header that carries it."""
    app.config["STORECAST_ADMIN_TOKEN"] = ADMIN_TOKEN
    return ADMIN_HEADERS
