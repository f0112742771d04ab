"""desk logins, sessions and tokens, audit log; call notes and transfers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_credentials',
                    sa.Column('user_id', sa.String(length=64), nullable=False),
                    sa.Column('password_hash', sa.String(length=255), nullable=False),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('user_id'))
    op.create_table('auth_tokens',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('kind', sa.String(length=8), nullable=False),
                    sa.Column('user_id', sa.String(length=64), nullable=False),
                    sa.Column('csrf', sa.String(length=64), nullable=False),
                    sa.Column('label', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('revoked', sa.Boolean(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))
    with op.batch_alter_table('auth_tokens') as b:
        b.create_index(b.f('ix_auth_tokens_user_id'), ['user_id'], unique=False)
        b.create_index(b.f('ix_auth_tokens_expires_at'), ['expires_at'], unique=False)
    op.create_table('audit_log',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('user_id', sa.String(length=64), nullable=False),
                    sa.Column('role', sa.String(length=16), nullable=False),
                    sa.Column('action', sa.String(length=32), nullable=False),
                    sa.Column('call_id', sa.String(length=64), nullable=False),
                    sa.Column('target', sa.String(length=128), nullable=False),
                    sa.Column('allowed', sa.Boolean(), nullable=False),
                    sa.Column('detail', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('audit_log') as b:
        b.create_index(b.f('ix_audit_log_at'), ['at'], unique=False)
        b.create_index(b.f('ix_audit_log_user_id'), ['user_id'], unique=False)
        b.create_index(b.f('ix_audit_log_action'), ['action'], unique=False)
        b.create_index(b.f('ix_audit_log_call_id'), ['call_id'], unique=False)
    with op.batch_alter_table('call_records') as b:
        b.add_column(sa.Column('transfers', sa.String(length=255), nullable=False, server_default=''))
        b.add_column(sa.Column('notes', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('call_records') as b:
        b.drop_column('notes')
        b.drop_column('transfers')
    op.drop_table('audit_log')
    op.drop_table('auth_tokens')
    op.drop_table('user_credentials')
