"""merge the metrics poll state into the graph: one head again

Revision ID: merge_0003
Revises: merge_0002, metrics_0002
Create Date: 2026-12-03
"""

revision = "merge_0003"
down_revision = ("merge_0002", "metrics_0002")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
