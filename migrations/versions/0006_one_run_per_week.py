"""one forecast run per (data week, model version): a unique index on forecast_runs

Databases written before the index may hold several runs of the same week by the same model version
(concurrent publishes). Before the index is created, the newest of them (the highest id, the last
one published) is kept and the others are deleted with their forecast rows; the migration logs how
many. Lag scores already computed stay in lag_accuracy. The downgrade drops the index only: deleted
duplicates do not come back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# runs with a newer run of the same week and model version
SUPERSEDED = (
    "SELECT r.id FROM forecast_runs r WHERE EXISTS (SELECT 1 FROM forecast_runs n "
    "WHERE n.data_through = r.data_through AND n.model_version = r.model_version AND n.id > r.id)"
)


def upgrade() -> None:
    bind = op.get_bind()
    superseded = [row[0] for row in bind.execute(sa.text(SUPERSEDED))]
    if superseded:
        ids = sa.bindparam("ids", superseded, expanding=True)
        bind.execute(sa.text("DELETE FROM forecast_rows WHERE run_id IN :ids").bindparams(ids))
        bind.execute(sa.text("DELETE FROM forecast_runs WHERE id IN :ids").bindparams(ids))
        log.warning(
            "deleted %d duplicate forecast run(s) of a week already published by the same model "
            "version, keeping the newest: %s",
            len(superseded),
            superseded,
        )
    op.create_index(
        "uq_forecast_runs_week_version", "forecast_runs", ["data_through", "model_version"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_forecast_runs_week_version", table_name="forecast_runs")
