"""appointments: home visits (上门服务) with their own seats, the applicant's address and why

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-06 19:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointments') as b:
        b.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='office'))
        b.add_column(sa.Column('address', sa.Text(), nullable=False, server_default=''))
        b.add_column(sa.Column('reason', sa.String(length=32), nullable=False, server_default=''))
        b.drop_constraint('uq_appointment_seat', type_='unique')
        b.create_unique_constraint('uq_appointment_seat', ['center_id', 'kind', 'day', 'slot', 'seat'])


def downgrade() -> None:
    with op.batch_alter_table('appointments') as b:
        b.drop_constraint('uq_appointment_seat', type_='unique')
        b.create_unique_constraint('uq_appointment_seat', ['center_id', 'day', 'slot', 'seat'])
        b.drop_column('reason')
        b.drop_column('address')
        b.drop_column('kind')
