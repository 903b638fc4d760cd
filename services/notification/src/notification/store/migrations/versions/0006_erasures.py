"""erasures: the privacy.v1 requests applied here, and a tombstone per erased feedback id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('customer_id', sa.String(length=256), nullable=True),
    sa.Column('items', sa.Integer(), nullable=False, comment='feedback ids the request listed'),
    sa.PrimaryKeyConstraint('request_id')
    )
    op.create_table('erased_items',
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('feedback_id')
    )


def downgrade() -> None:
    op.drop_table('erased_items')
    op.drop_table('erasures')
