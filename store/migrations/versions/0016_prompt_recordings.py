"""prompt recordings: versions of IVR prompts recorded by phone or uploaded, who and when (issue 20)

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-06 19:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'prompt_recordings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('prompt_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('recorded_by', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('language', 'prompt_id', 'version', name='uq_prompt_recording_version'),
    )
    op.create_index('ix_prompt_recordings_language', 'prompt_recordings', ['language'])
    op.create_index('ix_prompt_recordings_recorded_at', 'prompt_recordings', ['recorded_at'])


def downgrade() -> None:
    op.drop_index('ix_prompt_recordings_recorded_at', 'prompt_recordings')
    op.drop_index('ix_prompt_recordings_language', 'prompt_recordings')
    op.drop_table('prompt_recordings')
