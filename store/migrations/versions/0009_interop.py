"""interop: partner outbox columns, handoffs, inbound requests, federation

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages') as b:
        b.add_column(sa.Column('partner', sa.String(length=32), nullable=False, server_default=''))
        b.add_column(sa.Column('payload', sa.Text(), nullable=False, server_default=''))
        b.add_column(sa.Column('idempotency_key', sa.String(length=96), nullable=True))
        b.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        b.add_column(sa.Column('last_error', sa.Text(), nullable=False, server_default=''))
        b.add_column(sa.Column('worker', sa.String(length=64), nullable=False, server_default=''))
        b.add_column(sa.Column('lease_until', TS, nullable=True))
        b.add_column(sa.Column('delivered_at', TS, nullable=True))
        b.add_column(sa.Column('updated_at', TS, nullable=True))
        b.create_index(b.f('ix_outbox_messages_partner'), ['partner'], unique=False)
        b.create_unique_constraint('uq_outbox_idempotency_key', ['idempotency_key'])

    op.create_table('handoffs',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('direction', sa.String(length=4), nullable=False),
                    sa.Column('partner', sa.String(length=32), nullable=False),
                    sa.Column('ticket_id', sa.Integer(), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('consent', sa.Boolean(), nullable=False),
                    sa.Column('consent_by', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('partner_ticket_id', sa.String(length=64), nullable=False),
                    sa.Column('status_seq', sa.Integer(), nullable=False),
                    sa.Column('status_at', TS, nullable=True),
                    sa.Column('note', sa.Text(), nullable=False),
                    sa.Column('created_at', TS, nullable=False),
                    sa.Column('updated_at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('handoffs') as b:
        for col in ('partner', 'ticket_id', 'city', 'status', 'partner_ticket_id'):
            b.create_index(b.f(f'ix_handoffs_{col}'), [col], unique=False)

    op.create_table('inbound_requests',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('partner', sa.String(length=32), nullable=False),
                    sa.Column('nonce', sa.String(length=64), nullable=False),
                    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
                    sa.Column('path', sa.String(length=128), nullable=False),
                    sa.Column('status_code', sa.Integer(), nullable=False),
                    sa.Column('response', sa.Text(), nullable=False),
                    sa.Column('received_at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('partner', 'nonce', name='uq_inbound_nonce'),
                    sa.UniqueConstraint('partner', 'idempotency_key', name='uq_inbound_idempotency'))
    with op.batch_alter_table('inbound_requests') as b:
        b.create_index(b.f('ix_inbound_requests_received_at'), ['received_at'], unique=False)

    op.create_table('city_nodes',
                    sa.Column('node', sa.String(length=64), nullable=False),
                    sa.Column('cities', sa.Text(), nullable=False),
                    sa.Column('report', sa.Text(), nullable=False),
                    sa.Column('last_seen', TS, nullable=True),
                    sa.Column('ticket_seq', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('node'))
    op.create_table('node_sequences',
                    sa.Column('name', sa.String(length=32), nullable=False),
                    sa.Column('value', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    op.create_table('federated_events',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('node', sa.String(length=64), nullable=False),
                    sa.Column('seq', sa.Integer(), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('ticket_id', sa.Integer(), nullable=False),
                    sa.Column('ticket', sa.Text(), nullable=False),
                    sa.Column('received_at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('node', 'seq', name='uq_federated_event'))
    with op.batch_alter_table('federated_events') as b:
        for col in ('node', 'city', 'received_at'):
            b.create_index(b.f(f'ix_federated_events_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('federated_events')
    op.drop_table('node_sequences')
    op.drop_table('city_nodes')
    op.drop_table('inbound_requests')
    op.drop_table('handoffs')
    with op.batch_alter_table('outbox_messages') as b:
        b.drop_constraint('uq_outbox_idempotency_key', type_='unique')
        b.drop_index(b.f('ix_outbox_messages_partner'))
        for col in ('updated_at', 'delivered_at', 'lease_until', 'worker', 'last_error', 'attempts',
                    'idempotency_key', 'payload', 'partner'):
            b.drop_column(col)
