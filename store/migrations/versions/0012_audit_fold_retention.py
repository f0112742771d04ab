"""audit log: refusals folded per action, source and minute with a count (issue 16, finding 6)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as b:
        b.add_column(sa.Column('source', sa.String(length=64), nullable=False, server_default=''))
        b.add_column(sa.Column('count', sa.Integer(), nullable=False, server_default='1'))
        b.add_column(sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('fold_minute', sa.Integer(), nullable=True))
    op.execute("UPDATE audit_log SET last_at = at")
    with op.batch_alter_table('audit_log') as b:
        b.alter_column('last_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        b.create_unique_constraint('uq_audit_fold', ['fold_minute', 'action', 'source'])


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as b:
        b.drop_constraint('uq_audit_fold', type_='unique')
        b.drop_column('fold_minute')
        b.drop_column('last_at')
        b.drop_column('count')
        b.drop_column('source')
