"""selfmon: a heartbeat row per dbmon component, and the self-check's shared state

Revision ID: selfmon_0001
Revises: files_0001
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = 'selfmon_0001'
down_revision = 'files_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('component_heartbeats',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('instance', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', JSON, nullable=False),
    sa.Column('interval', sa.Float(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', JSON, nullable=False),
    sa.PrimaryKeyConstraint('kind', 'instance', name=op.f('pk_component_heartbeats'))
    )
    op.create_table('selfmon_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', JSON, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_selfmon_state'))
    )


def downgrade() -> None:
    op.drop_table('selfmon_state')
    op.drop_table('component_heartbeats')
