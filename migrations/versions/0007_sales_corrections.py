"""actual sales corrections: the record of stored weeks changed on purpose

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "actual_sale_corrections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.Integer(), nullable=False),
        sa.Column("dept", sa.Integer(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("old_weekly_sales", sa.Float(), nullable=False),
        sa.Column("new_weekly_sales", sa.Float(), nullable=False),
        sa.Column("old_is_holiday", sa.Boolean(), nullable=False),
        sa.Column("new_is_holiday", sa.Boolean(), nullable=False),
        sa.Column("corrected_at", sa.DateTime(), nullable=False),
        sa.Column("corrected_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("actual_sale_corrections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_actual_sale_corrections_corrected_at"), ["corrected_at"], unique=False
        )
        batch_op.create_index("ix_actual_sale_corrections_key", ["store", "dept", "week"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("actual_sale_corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_actual_sale_corrections_key")
        batch_op.drop_index(batch_op.f("ix_actual_sale_corrections_corrected_at"))
    op.drop_table("actual_sale_corrections")
