"""follow-up visits and opt-outs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('follow_ups',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('ticket_id', sa.Integer(), nullable=False),
                    sa.Column('caller_number', sa.String(length=32), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('agent', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('attitude', sa.Integer(), nullable=True),
                    sa.Column('efficiency', sa.Integer(), nullable=True),
                    sa.Column('professionalism', sa.Integer(), nullable=True),
                    sa.Column('callback_requested', sa.Boolean(), nullable=False),
                    sa.Column('result', sa.String(length=16), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('ticket_id'))
    with op.batch_alter_table('follow_ups') as b:
        for col in ('caller_number', 'city', 'agent', 'status', 'next_at'):
            b.create_index(b.f(f'ix_follow_ups_{col}'), [col], unique=False)
    op.create_table('opt_outs',
                    sa.Column('number', sa.String(length=32), nullable=False),
                    sa.Column('source', sa.String(length=32), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('number'))


def downgrade() -> None:
    op.drop_table('opt_outs')
    op.drop_table('follow_ups')
