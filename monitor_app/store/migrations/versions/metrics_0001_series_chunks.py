"""metrics: series, unpacked points of the current hour, packed chunks per tier

Revision ID: metrics_0001
Revises: merge_0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "metrics_0001"
down_revision = "merge_0001"
branch_labels = ("metrics",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("labels_key", sa.String(length=40), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_metric_series_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_series")),
        sa.UniqueConstraint("asset_id", "name", "labels_key", name="uq_metric_series_identity"),
    )
    op.create_index(op.f("ix_metric_series_asset_id"), "metric_series", ["asset_id"])
    op.create_index(op.f("ix_metric_series_name"), "metric_series", ["name"])
    op.create_table(
        "metric_points",
        sa.Column("series_id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"],
                                name=op.f("fk_metric_points_series_id_metric_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_id", "at", name=op.f("pk_metric_points")),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("series_id", BIG_ID, nullable=False),
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"],
                                name=op.f("fk_metric_chunks_series_id_metric_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_id", "tier", "start", name=op.f("pk_metric_chunks")),
    )


def downgrade() -> None:
    op.drop_table("metric_chunks")
    op.drop_table("metric_points")
    op.drop_index(op.f("ix_metric_series_name"), table_name="metric_series")
    op.drop_index(op.f("ix_metric_series_asset_id"), table_name="metric_series")
    op.drop_table("metric_series")
