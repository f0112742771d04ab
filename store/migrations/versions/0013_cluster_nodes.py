"""cluster nodes: the node that handled each call, leases on callback tasks, the node that dialled a
follow-up, and agents' shared state (docs/scale-out.md "Shared state across nodes")

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_records') as b:
        b.add_column(sa.Column('node', sa.String(length=32), nullable=False, server_default=''))
        b.create_index('ix_call_records_node', ['node'])
    with op.batch_alter_table('callback_tasks') as b:
        b.add_column(sa.Column('node', sa.String(length=32), nullable=False, server_default=''))
        b.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        b.create_index('ix_callback_tasks_lease_until', ['lease_until'])
    with op.batch_alter_table('follow_ups') as b:
        b.add_column(sa.Column('node', sa.String(length=32), nullable=False, server_default=''))
    op.create_table(
        'agent_states',
        sa.Column('agent_id', sa.String(length=64), primary_key=True),
        sa.Column('logged_in', sa.Boolean(), nullable=False),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False, server_default=''),
        sa.Column('node', sa.String(length=32), nullable=False, server_default=''),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('agent_states')
    with op.batch_alter_table('follow_ups') as b:
        b.drop_column('node')
    with op.batch_alter_table('callback_tasks') as b:
        b.drop_index('ix_callback_tasks_lease_until')
        b.drop_column('lease_until')
        b.drop_column('node')
    with op.batch_alter_table('call_records') as b:
        b.drop_index('ix_call_records_node')
        b.drop_column('node')
