"""merge the servers and metrics branches: one head again

Revision ID: merge_0002
Revises: metrics_0001, servers_0001
Create Date: 2026-12-02
"""

revision = "merge_0002"
down_revision = ("metrics_0001", "servers_0001")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
