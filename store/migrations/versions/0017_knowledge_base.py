"""legal knowledge base: entries, versions, uses, unanswered searches

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-06 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('kb_entries',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('slug', sa.String(length=64), nullable=False),
                    sa.Column('category', sa.String(length=32), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('latest_version', sa.Integer(), nullable=False),
                    sa.Column('published_version', sa.Integer(), nullable=True),
                    sa.Column('created_at', TS, nullable=False),
                    sa.Column('updated_at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('slug'))
    with op.batch_alter_table('kb_entries') as b:
        for col in ('category', 'status'):
            b.create_index(b.f(f'ix_kb_entries_{col}'), [col], unique=False)

    op.create_table('kb_versions',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('entry_id', sa.Integer(), nullable=False),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('title', sa.String(length=200), nullable=False),
                    sa.Column('question', sa.Text(), nullable=False),
                    sa.Column('answer', sa.Text(), nullable=False),
                    sa.Column('summary', sa.Text(), nullable=False),
                    sa.Column('laws', sa.Text(), nullable=False),
                    sa.Column('keywords', sa.Text(), nullable=False),
                    sa.Column('effective_from', sa.String(length=10), nullable=False),
                    sa.Column('effective_to', sa.String(length=10), nullable=False),
                    sa.Column('needs_lawyer_review', sa.Boolean(), nullable=False),
                    sa.Column('created_by', sa.String(length=64), nullable=False),
                    sa.Column('created_at', TS, nullable=False),
                    sa.Column('reviewed_by', sa.String(length=64), nullable=False),
                    sa.Column('published_at', TS, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('entry_id', 'version', name='uq_kb_version'))
    with op.batch_alter_table('kb_versions') as b:
        b.create_index(b.f('ix_kb_versions_entry_id'), ['entry_id'], unique=False)

    op.create_table('kb_uses',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('entry_id', sa.Integer(), nullable=False),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.Column('ticket_id', sa.Integer(), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('action', sa.String(length=16), nullable=False),
                    sa.Column('by', sa.String(length=64), nullable=False),
                    sa.Column('at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('ticket_id', 'entry_id', 'action', name='uq_kb_use'))
    with op.batch_alter_table('kb_uses') as b:
        for col in ('entry_id', 'ticket_id', 'city', 'at'):
            b.create_index(b.f(f'ix_kb_uses_{col}'), [col], unique=False)

    op.create_table('kb_misses',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('query', sa.String(length=200), nullable=False),
                    sa.Column('category', sa.String(length=32), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('by', sa.String(length=64), nullable=False),
                    sa.Column('at', TS, nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('kb_misses') as b:
        b.create_index(b.f('ix_kb_misses_at'), ['at'], unique=False)
    # the entries' text is indexed in search_docs (kind "knowledge", migration 0008's engines)


def downgrade() -> None:
    op.execute("DELETE FROM search_docs WHERE kind = 'knowledge'")
    for table in ('kb_misses', 'kb_uses', 'kb_versions', 'kb_entries'):
        op.drop_table(table)
