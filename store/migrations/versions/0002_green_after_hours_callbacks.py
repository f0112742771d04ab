"""green channel, after-hours flag, callback tasks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:07:35.138011
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callback_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('caller_number', sa.String(length=32), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('voicemail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_id')
    )
    with op.batch_alter_table('callback_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_tasks_caller_number'), ['caller_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tasks_city'), ['city'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_tasks_status'), ['status'], unique=False)

    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('green', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('after_hours', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.alter_column('overflow',
               existing_type=sa.VARCHAR(length=128),
               type_=sa.String(length=255),
               existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_call_records_green'), ['green'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_green'))
        batch_op.alter_column('overflow',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=128),
               existing_nullable=False)
        batch_op.drop_column('after_hours')
        batch_op.drop_column('green')

    with op.batch_alter_table('callback_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_tasks_status'))
        batch_op.drop_index(batch_op.f('ix_callback_tasks_city'))
        batch_op.drop_index(batch_op.f('ix_callback_tasks_caller_number'))

    op.drop_table('callback_tasks')
