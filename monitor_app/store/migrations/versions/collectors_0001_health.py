"""collectors: failure streak per (collector, subject) for check_failed / check_recovered events

Revision ID: collectors_0001
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "collectors_0001"
down_revision = "0001"
branch_labels = ("collectors",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collector_health",
        sa.Column("collector", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_collector_health_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collector", "subject", name=op.f("pk_collector_health")),
    )
    with op.batch_alter_table("collector_health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collector_health_asset_id"), ["asset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collector_health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collector_health_asset_id"))
    op.drop_table("collector_health")
