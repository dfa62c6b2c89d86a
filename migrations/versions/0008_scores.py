"""lag accuracy: sums of the interval scores and pinball losses of the published forecasts

Revision ID: 0008_scores
Revises: 0007
Create Date: 2026-12-07 06:00:00.000000

The columns are nullable: weeks scored before them keep their other sums, and their scores read as
unknown until the week is scored again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_scores"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("interval_score_80", "interval_score_95", "pinball_10", "pinball_50", "pinball_90")


def upgrade() -> None:
    with op.batch_alter_table("lag_accuracy", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lag_accuracy", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
