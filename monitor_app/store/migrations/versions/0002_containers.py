"""containers: docker event cursor and container states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = ("containers",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "container_event_cursors",
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("time_nano", sa.BigInteger(), nullable=False),
        sa.Column("keys", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_container_event_cursors")),
    )
    op.create_table(
        "container_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("container_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("image", sa.String(length=512), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=True),
        sa.Column("is_database", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("restart_count", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("last_event_nano", sa.BigInteger(), nullable=False),
        sa.Column("stop_requested_nano", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_container_states_asset_id_assets"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_container_states")),
        sa.UniqueConstraint("container_id", name=op.f("uq_container_states_container_id")),
    )
    with op.batch_alter_table("container_states", schema=None) as batch_op:
        batch_op.create_index("ix_container_states_asset", ["asset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("container_states", schema=None) as batch_op:
        batch_op.drop_index("ix_container_states_asset")
    op.drop_table("container_states")
    op.drop_table("container_event_cursors")
