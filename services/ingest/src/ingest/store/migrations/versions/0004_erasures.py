"""erasures: the GDPR-style erasure requests (POST /v1/erasures) and the items each erased

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 20:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False, comment='the admin API key (name and id)'),
    sa.Column('customer_id', sa.String(length=256), nullable=True),
    sa.Column('author_email_hash', sa.String(length=64), nullable=True,
              comment='keyed hash, as published; never the address'),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('feedback_ids', sa.JSON(), nullable=False, comment='the items erased'),
    sa.Column('event_id', sa.String(length=64), nullable=False, comment="the privacy.v1 event's id (in the outbox)"),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_requested_at'), ['requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_requested_at'))
    op.drop_table('erasures')
