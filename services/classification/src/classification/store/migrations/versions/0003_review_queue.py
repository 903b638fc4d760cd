"""review queue: classifications.needs_review

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 18:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_review', sa.Boolean(), server_default=sa.false(), nullable=False,
                                      comment='a label is under its review threshold and no person has corrected '
                                              'the item since'))
        batch_op.create_index('ix_classifications_review', ['needs_review', 'created_at', 'feedback_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.drop_index('ix_classifications_review')
        batch_op.drop_column('needs_review')
