"""SMS over SMPP: each submitted part of a text with the SMSC's message id and its receipt (issue 20)

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-06 19:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_parts',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('message_id', sa.Integer(), nullable=False),
                    sa.Column('part', sa.Integer(), nullable=False),
                    sa.Column('parts', sa.Integer(), nullable=False),
                    sa.Column('smsc_id', sa.String(length=65), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('receipt', sa.String(length=16), nullable=False),
                    sa.Column('error', sa.String(length=16), nullable=False),
                    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('message_id', 'part', name='uq_sms_part'))
    with op.batch_alter_table('sms_parts') as b:
        b.create_index(b.f('ix_sms_parts_message_id'), ['message_id'], unique=False)
        b.create_index(b.f('ix_sms_parts_smsc_id'), ['smsc_id'], unique=False)


def downgrade() -> None:
    op.drop_table('sms_parts')
