"""analysis: each series rule's detector state, and the anomaly windows found

Revision ID: analysis_0001
Revises: merge_0003
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

revision = "analysis_0001"
down_revision = "merge_0003"
branch_labels = ("analysis",)
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "series_detector_states",
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("series_id", BIG_ID, nullable=False),
        sa.Column("fed_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"],
                                name=op.f("fk_series_detector_states_series_id_metric_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule", "series_id", name=op.f("pk_series_detector_states")),
    )
    op.create_table(
        "metric_anomalies",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("series_id", BIG_ID, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("peak", sa.Float(), nullable=False),
        sa.Column("adapted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"],
                                name=op.f("fk_metric_anomalies_series_id_metric_series"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_metric_anomalies_asset_id_assets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_anomalies")),
        sa.UniqueConstraint("rule", "series_id", "start", name="uq_metric_anomalies_window"),
    )
    op.create_index(op.f("ix_metric_anomalies_series_id"), "metric_anomalies", ["series_id"])
    op.create_index("ix_metric_anomalies_asset_start", "metric_anomalies", ["asset_id", "start"])


def downgrade() -> None:
    op.drop_index("ix_metric_anomalies_asset_start", table_name="metric_anomalies")
    op.drop_index(op.f("ix_metric_anomalies_series_id"), table_name="metric_anomalies")
    op.drop_table("metric_anomalies")
    op.drop_table("series_detector_states")
