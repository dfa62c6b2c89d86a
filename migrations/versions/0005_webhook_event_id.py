"""webhook deliveries: an event id, the same for every attempt, so a receiver can drop repeats

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 10:00:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alert_deliveries", sa.Column("event_id", sa.String(length=36), nullable=True))
    deliveries = sa.table(
        "alert_deliveries", sa.column("id", sa.Integer()), sa.column("event_id", sa.String())
    )
    connection = op.get_bind()
    for (delivery_id,) in connection.execute(sa.select(deliveries.c.id)).all():
        connection.execute(
            deliveries.update().where(deliveries.c.id == delivery_id).values(event_id=str(uuid.uuid4()))
        )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_event_id"), ["event_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_event_id"))
        batch_op.drop_column("event_id")
