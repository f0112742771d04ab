"""complaints and petitions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('complaints',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('ref', sa.String(length=16), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('source', sa.String(length=16), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('complainant_number', sa.String(length=32), nullable=False),
                    sa.Column('complainant_name', sa.String(length=64), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=True),
                    sa.Column('about_agent', sa.String(length=64), nullable=False),
                    sa.Column('description', sa.Text(), nullable=False),
                    sa.Column('assigned_to', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('reply', sa.Text(), nullable=False),
                    sa.Column('received_by', sa.String(length=64), nullable=False),
                    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('ref'))
    with op.batch_alter_table('complaints') as b:
        for col in ('city', 'complainant_number', 'call_id', 'about_agent', 'assigned_to', 'status', 'due_at',
                    'created_at'):
            b.create_index(b.f(f'ix_complaints_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('complaints')
