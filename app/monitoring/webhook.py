"""Alert notifications: queued delivery rows (written with the alert's change) posted to a webhook.

The JSON carries `text`, which Slack and Mattermost incoming webhooks show as the message, beside the
alert's fields. A failed post is retried with a growing delay; the row records attempts, the last
error and when it was delivered, so nothing is lost while the receiver is down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request

from sqlalchemy import select

from app.storage import AlertDelivery, Storage, utcnow

log = logging.getLogger(__name__)

MAX_DELAY = dt.timedelta(hours=1)
BATCH = 50


def retry_delay(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, ... at most an hour."""
    return min(dt.timedelta(seconds=30 * 2 ** min(max(attempts - 1, 0), 12)), MAX_DELAY)


def post_json(url: str, payload: dict, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the operator's URL
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "unexpected status", response.headers, None)


def deliver_pending(
    storage: Storage, url: str | None, *, timeout: float = 5.0, now: dt.datetime | None = None
) -> dict[str, int]:
    """Post the deliveries that are due; without a URL they are marked skipped (nobody to tell)."""
    now = now or utcnow()
    with storage.session() as session:
        due = session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.id)
            .limit(BATCH)
        ).all()
        delivered = failed = 0
        for delivery in due:
            if not url:
                delivery.status = "skipped"
                continue
            delivery.attempts += 1
            try:
                post_json(url, delivery.payload, timeout)
            except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, a malformed URL
                delivery.last_error = str(error)[:500]
                delivery.next_attempt_at = now + retry_delay(delivery.attempts)
                failed += 1
                log.warning(
                    "webhook delivery %d failed (attempt %d): %s", delivery.id, delivery.attempts, error
                )
                continue
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
            delivered += 1
    return {"due": len(due), "delivered": delivered, "failed": failed}
