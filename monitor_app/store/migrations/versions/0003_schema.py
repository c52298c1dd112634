"""schema: snapshots, change sets, changes, watch state

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = ("schema",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schema_snapshots",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_schema_snapshots_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_snapshots")),
        sa.UniqueConstraint("asset_id", "version", name="uq_schema_snapshots_asset_version"),
    )
    op.create_table(
        "schema_change_sets",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_risk", sa.String(length=16), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_schema_change_sets_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_change_sets")),
        sa.UniqueConstraint("asset_id", "to_version", name="uq_schema_change_sets_asset_to_version"),
    )
    with op.batch_alter_table("schema_change_sets", schema=None) as batch_op:
        batch_op.create_index("ix_schema_change_sets_asset_detected", ["asset_id", "detected_at"], unique=False)
    op.create_table(
        "schema_changes",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("change_set_id", BIGID, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=1024), nullable=False),
        sa.Column("risk", sa.String(length=16), nullable=False),
        sa.Column("renamed_from", sa.String(length=1024), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_schema_changes_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["change_set_id"], ["schema_change_sets.id"],
                                name=op.f("fk_schema_changes_change_set_id_schema_change_sets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_changes")),
    )
    with op.batch_alter_table("schema_changes", schema=None) as batch_op:
        batch_op.create_index("ix_schema_changes_asset_detected", ["asset_id", "detected_at"], unique=False)
        batch_op.create_index("ix_schema_changes_asset_risk", ["asset_id", "risk"], unique=False)
        batch_op.create_index("ix_schema_changes_object", ["object"], unique=False)
    op.create_table(
        "schema_watch_state",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("marker", sa.String(length=128), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger_installed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("open_mismatches", JSON, nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_schema_watch_state_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_schema_watch_state")),
    )


def downgrade() -> None:
    op.drop_table("schema_watch_state")
    with op.batch_alter_table("schema_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_schema_changes_object")
        batch_op.drop_index("ix_schema_changes_asset_risk")
        batch_op.drop_index("ix_schema_changes_asset_detected")
    op.drop_table("schema_changes")
    with op.batch_alter_table("schema_change_sets", schema=None) as batch_op:
        batch_op.drop_index("ix_schema_change_sets_asset_detected")
    op.drop_table("schema_change_sets")
    op.drop_table("schema_snapshots")
