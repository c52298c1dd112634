"""merge the concern branches: one head again

Each concern keeps its own migration branch off the foundation; this revision joins them so
`alembic upgrade head` and downgrades have one target, and new concern branches start here.

Revision ID: merge_0001
Revises: 0002, 0003, 0004, 0005_posture, audit_0001, collectors_0001
Create Date: 2026-12-02
"""

revision = "merge_0001"
down_revision = ("0002", "0003", "0004", "0005_posture", "audit_0001", "collectors_0001")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
