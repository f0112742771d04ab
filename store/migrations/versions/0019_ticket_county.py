"""tickets: the caller's county (administrative-division code) for the provincial report's county figures

Revision ID: 0019
Revises: 0012
Create Date: 2026-12-06 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as b:
        b.add_column(sa.Column('county', sa.String(6), nullable=False, server_default=''))
        b.create_index('ix_tickets_county', ['county'])


def downgrade() -> None:
    with op.batch_alter_table('tickets') as b:
        b.drop_index('ix_tickets_county')
        b.drop_column('county')
