"""What every API error and prediction answer must look like, and how the pages show an amount."""

from __future__ import annotations


def assert_error(response, status: int, *fields: str) -> dict:
    """The one error shape (`{"error": ..., "details": [...]}`) naming each of `fields`."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "details"} and isinstance(body["error"], str)
    for detail in body["details"]:
        assert {"field", "message"} <= set(detail)
    got = [d["field"] for d in body["details"]]
    for field in fields:
        assert field in got, got
    return body


def assert_ordered(prediction: dict) -> None:
    p = prediction
    assert p["lower_95"] <= p["lower_80"] <= p["prediction"] <= p["upper_80"] <= p["upper_95"], p


def money(value: float) -> str:
    """How the pages show an amount (templates/partials/_macros.html)."""
    return f"${round(value, 2):,.0f}"
