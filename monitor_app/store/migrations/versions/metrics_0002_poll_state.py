"""metrics: where each collector tier stands on each asset (last dispatch, last poll, raw counters)

Revision ID: metrics_0002
Revises: metrics_0001
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "metrics_0002"
down_revision = "metrics_0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "metric_poll_state",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counters", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_metric_poll_state_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", "tier", name=op.f("pk_metric_poll_state")),
    )


def downgrade() -> None:
    op.drop_table("metric_poll_state")
