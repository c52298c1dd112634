"""servers: monitored servers' connection budget and the slot leases held on them

Revision ID: servers_0001
Revises: merge_0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "servers_0001"
down_revision = "merge_0001"
branch_labels = ("servers",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitored_servers",
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=True),
        sa.Column("max_connections", sa.Integer(), nullable=True),
        sa.Column("reserved_connections", sa.Integer(), nullable=True),
        sa.Column("limits_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backoff_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("last_refusal", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("server", name=op.f("pk_monitored_servers")),
    )
    op.create_table(
        "server_connection_slots",
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server", "slot", name=op.f("pk_server_connection_slots")),
    )
    with op.batch_alter_table("server_connection_slots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_server_connection_slots_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("server_connection_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_connection_slots_expires_at"))
    op.drop_table("server_connection_slots")
    op.drop_table("monitored_servers")
