"""federation nonces: kept in the database, so a city node's request cannot be replayed after a restart

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('federation_nonces',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('node', sa.String(length=64), nullable=False),
                    sa.Column('nonce', sa.String(length=64), nullable=False),
                    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('node', 'nonce', name='uq_federation_nonce'))
    with op.batch_alter_table('federation_nonces') as b:
        b.create_index(b.f('ix_federation_nonces_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_table('federation_nonces')
