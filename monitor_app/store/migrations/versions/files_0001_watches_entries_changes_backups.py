"""files: watched paths, their baseline, the changes found and the backups judged

Revision ID: files_0001
Revises: analysis_0001
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = 'files_0001'
down_revision = 'analysis_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('file_watches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('kinds', JSON, nullable=False),
    sa.Column('spec', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_detail', sa.Text(), nullable=True),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('errors', JSON, nullable=False),
    sa.Column('baseline_ready', sa.Boolean(), nullable=False),
    sa.Column('last_scan_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_full_scan_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sample_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pending_restart', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_file_watches_asset_id_assets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_watches')),
    sa.UniqueConstraint('key', name=op.f('uq_file_watches_key'))
    )
    op.create_table('file_backups',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('watch_id', sa.Integer(), nullable=False),
    sa.Column('path_key', sa.String(length=40), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('format', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['watch_id'], ['file_watches.id'], name=op.f('fk_file_backups_watch_id_file_watches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_backups')),
    sa.UniqueConstraint('watch_id', 'path_key', name='uq_file_backups_path')
    )
    op.create_table('file_changes',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('watch_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('fields', JSON, nullable=False),
    sa.Column('old', JSON, nullable=True),
    sa.Column('new', JSON, nullable=True),
    sa.Column('dest', sa.Text(), nullable=True),
    sa.Column('diff', JSON, nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_file_changes_asset_id_assets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['watch_id'], ['file_watches.id'], name=op.f('fk_file_changes_watch_id_file_watches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_changes'))
    )
    with op.batch_alter_table('file_changes', schema=None) as batch_op:
        batch_op.create_index('ix_file_changes_asset_observed', ['asset_id', 'observed_at'], unique=False)
        batch_op.create_index('ix_file_changes_watch_id', ['watch_id', 'id'], unique=False)

    op.create_table('file_entries',
    sa.Column('watch_id', sa.Integer(), nullable=False),
    sa.Column('path_key', sa.String(length=40), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('state', JSON, nullable=False),
    sa.Column('config', JSON, nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['watch_id'], ['file_watches.id'], name=op.f('fk_file_entries_watch_id_file_watches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('watch_id', 'path_key', name=op.f('pk_file_entries'))
    )


def downgrade() -> None:
    op.drop_table('file_entries')
    with op.batch_alter_table('file_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_file_changes_watch_id')
        batch_op.drop_index('ix_file_changes_asset_observed')

    op.drop_table('file_changes')
    op.drop_table('file_backups')
    op.drop_table('file_watches')
