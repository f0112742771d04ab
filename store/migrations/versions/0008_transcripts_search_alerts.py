"""transcripts, full-text search, alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('transcripts',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('language', sa.String(length=8), nullable=False),
                    sa.Column('agent', sa.String(length=64), nullable=False),
                    sa.Column('recording', sa.Text(), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('reason', sa.Text(), nullable=False),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('worker', sa.String(length=64), nullable=False),
                    sa.Column('lease_until', TS, nullable=True),
                    sa.Column('next_try_at', TS, nullable=False),
                    sa.Column('segments', sa.Text(), nullable=False),
                    sa.Column('text', sa.Text(), nullable=False),
                    sa.Column('audio_seconds', sa.Float(), nullable=True),
                    sa.Column('suggested_categories', sa.String(length=255), nullable=False),
                    sa.Column('call_started_at', TS, nullable=True),
                    sa.Column('created_at', TS, nullable=False),
                    sa.Column('updated_at', TS, nullable=False),
                    sa.Column('done_at', TS, nullable=True),
                    sa.Column('recording_purged_at', TS, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('call_id'))
    with op.batch_alter_table('transcripts') as b:
        for col in ('city', 'agent', 'status', 'next_try_at', 'call_started_at'):
            b.create_index(b.f(f'ix_transcripts_{col}'), [col], unique=False)

    op.create_table('search_docs',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('ref', sa.String(length=64), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('agent', sa.String(length=64), nullable=False),
                    sa.Column('at', TS, nullable=False),
                    sa.Column('text', sa.Text(), nullable=False),
                    sa.Column('tokens', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('kind', 'ref', name='uq_search_doc'))
    with op.batch_alter_table('search_docs') as b:
        for col in ('call_id', 'city', 'agent', 'at'):
            b.create_index(b.f(f'ix_search_docs_{col}'), [col], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        # external-content FTS5 over search_docs.tokens, kept in step by triggers
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(tokens, content='search_docs', content_rowid='id')")
        op.execute("CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
                   "INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END")
        op.execute("CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN "
                   "INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END")
        op.execute("CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN "
                   "INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
                   "INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END")
    else:
        op.execute("CREATE INDEX ix_search_docs_fts ON search_docs USING gin (to_tsvector('simple', tokens))")

    op.create_table('alerts',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('city', sa.String(length=32), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=True),
                    sa.Column('agent', sa.String(length=64), nullable=False),
                    sa.Column('topic', sa.String(length=32), nullable=False),
                    sa.Column('term', sa.String(length=64), nullable=False),
                    sa.Column('severity', sa.String(length=8), nullable=False),
                    sa.Column('phase', sa.String(length=16), nullable=False),
                    sa.Column('speaker', sa.String(length=16), nullable=False),
                    sa.Column('detail', sa.Text(), nullable=False),
                    sa.Column('created_at', TS, nullable=False),
                    sa.Column('acknowledged_by', sa.String(length=64), nullable=False),
                    sa.Column('acknowledged_at', TS, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('call_id', 'kind', 'topic', name='uq_alert_call_topic'))
    with op.batch_alter_table('alerts') as b:
        for col in ('kind', 'city', 'call_id', 'created_at'):
            b.create_index(b.f(f'ix_alerts_{col}'), [col], unique=False)


def downgrade() -> None:
    op.drop_table('alerts')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table('search_docs')
    op.drop_table('transcripts')
