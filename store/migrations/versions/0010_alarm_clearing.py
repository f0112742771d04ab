"""alerts: when an alarm's condition cleared

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts') as b:
        b.add_column(sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as b:
        b.drop_column('cleared_at')
