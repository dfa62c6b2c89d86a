"""The JSON API under /api/v1."""

from flask import Blueprint, Flask

bp = Blueprint("api", __name__)


@bp.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def register_error_handlers(app: Flask) -> None:
    """JSON errors under /api, HTML elsewhere."""
