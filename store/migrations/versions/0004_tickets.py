"""consultation tickets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tickets',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=True),
                    sa.Column('source', sa.String(length=16), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('caller_number', sa.String(length=32), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('agent', sa.String(length=64), nullable=False),
                    sa.Column('green', sa.String(length=32), nullable=False),
                    sa.Column('category', sa.String(length=32), nullable=False),
                    sa.Column('summary', sa.Text(), nullable=False),
                    sa.Column('answer', sa.Text(), nullable=False),
                    sa.Column('outcome', sa.String(length=24), nullable=False),
                    sa.Column('follow_up', sa.Boolean(), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('call_id'))
    with op.batch_alter_table('tickets') as b:
        for col in ('city', 'caller_number', 'agent', 'category', 'status', 'due_at', 'created_at'):
            b.create_index(b.f(f'ix_tickets_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('tickets')
