"""posture: open findings and last check per asset

Revision ID: 0005_posture
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0005_posture"
down_revision = "0001"
branch_labels = ("posture",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "posture_findings",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("finding", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("remediation", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_posture_findings_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", "finding", name=op.f("pk_posture_findings")),
    )
    with op.batch_alter_table("posture_findings", schema=None) as batch_op:
        batch_op.create_index("ix_posture_findings_severity", ["severity"], unique=False)
    op.create_table(
        "posture_state",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("server_version", sa.String(length=255), nullable=True),
        sa.Column("release_list_as_of", sa.String(length=10), nullable=True),
        sa.Column("not_checked", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_posture_state_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_posture_state")),
    )


def downgrade() -> None:
    op.drop_table("posture_state")
    with op.batch_alter_table("posture_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_posture_findings_severity")
    op.drop_table("posture_findings")
