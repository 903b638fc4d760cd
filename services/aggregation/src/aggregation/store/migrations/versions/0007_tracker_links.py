"""tracker_links: themes, insights and item sets linked to tracker issues, and their loops

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracker_links',
    sa.Column('link_id', sa.String(length=36), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False, comment='theme | insight | items'),
    sa.Column('subject_key', sa.String(length=320), nullable=False,
              comment='theme:<id> | insight:<id> | items:<sha256>'),
    sa.Column('theme_id', sa.String(length=256), nullable=True),
    sa.Column('insight_id', sa.String(length=36), nullable=True),
    sa.Column('feedback_ids', sa.JSON(), nullable=True, comment='the items of an `items` link'),
    sa.Column('issue_key', sa.String(length=400), nullable=True, comment='null while the issue is being created'),
    sa.Column('tracker', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('title', sa.String(length=1024), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False,
              comment='creating | open | in_progress | done | cancelled | failed'),
    sa.Column('created_issue', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('create_request', sa.JSON(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issue_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True, comment='when the loop closed'),
    sa.Column('release_id', sa.String(length=200), nullable=True),
    sa.Column('release_version', sa.String(length=200), nullable=True),
    sa.Column('loop_closed_at', sa.DateTime(timezone=True), nullable=True,
              comment='when the loop_closed insight was raised'),
    sa.Column('customers_told', sa.Integer(), server_default='0', nullable=False),
    sa.Column('regression_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('regressed_items', sa.Integer(), server_default='0', nullable=False),
    sa.Column('first_report_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=256), nullable=True, comment="the API key's name"),
    sa.PrimaryKeyConstraint('link_id')
    )
    op.create_index('ux_tracker_links_subject_issue', 'tracker_links', ['subject_key', 'issue_key'], unique=True)
    op.create_index('ix_tracker_links_issue', 'tracker_links', ['issue_key'])
    op.create_index('ix_tracker_links_theme', 'tracker_links', ['theme_id', 'linked_at'])
    op.create_index('ix_tracker_links_linked', 'tracker_links', ['linked_at', 'link_id'])
    op.create_index('ix_tracker_links_pending', 'tracker_links', ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_table('tracker_links')
