"""legal-aid appointments and the message outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('appointments',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('code', sa.String(length=16), nullable=False),
                    sa.Column('center_id', sa.String(length=48), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('day', sa.String(length=10), nullable=False),
                    sa.Column('slot', sa.String(length=5), nullable=False),
                    sa.Column('seat', sa.Integer(), nullable=True),
                    sa.Column('caller_number', sa.String(length=32), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('ticket_id', sa.Integer(), nullable=True),
                    sa.Column('booked_by', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('code'),
                    sa.UniqueConstraint('center_id', 'day', 'slot', 'seat', name='uq_appointment_seat'))
    with op.batch_alter_table('appointments') as b:
        for col in ('center_id', 'city', 'day', 'caller_number', 'ticket_id', 'status'):
            b.create_index(b.f(f'ix_appointments_{col}'), [col], unique=False)
    op.create_table('outbox_messages',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('channel', sa.String(length=16), nullable=False),
                    sa.Column('kind', sa.String(length=24), nullable=False),
                    sa.Column('to_number', sa.String(length=32), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('body', sa.Text(), nullable=False),
                    sa.Column('related', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('outbox_messages') as b:
        for col in ('to_number', 'related', 'status', 'not_before'):
            b.create_index(b.f(f'ix_outbox_messages_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('outbox_messages')
    op.drop_table('appointments')
