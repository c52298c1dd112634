"""audit: per-address windows that rate-limit anonymous audit rows

Revision ID: audit_0001
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "audit_0001"
down_revision = "0001"
branch_labels = ("audit",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_anonymous_windows",
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("remote_addr", "window_start", name=op.f("pk_audit_anonymous_windows")),
    )


def downgrade() -> None:
    op.drop_table("audit_anonymous_windows")
