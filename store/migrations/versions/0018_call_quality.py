"""call records: the browser phone's call quality (jitter, packet loss, round trip) from WebRTC stats

Revision ID: 0018
Revises: 0012
Create Date: 2026-12-06 19:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_records') as b:
        b.add_column(sa.Column('quality_jitter_ms', sa.Float(), nullable=True))
        b.add_column(sa.Column('quality_loss_pct', sa.Float(), nullable=True))
        b.add_column(sa.Column('quality_rtt_ms', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_records') as b:
        b.drop_column('quality_rtt_ms')
        b.drop_column('quality_loss_pct')
        b.drop_column('quality_jitter_ms')
