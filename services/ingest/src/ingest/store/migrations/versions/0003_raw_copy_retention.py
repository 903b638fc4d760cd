"""raw copy retention: feedback_items.raw may be blanked (NULL) once past INGEST_RAW_RETENTION_DAYS

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feedback_items', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.JSON(), nullable=True,
                              comment='the request as received (personal data included); NULL once past '
                                      'INGEST_RAW_RETENTION_DAYS',
                              existing_comment='the request as received (personal data included)')


def downgrade() -> None:
    # blanked copies come back as an empty object: the column is NOT NULL again
    op.execute("UPDATE feedback_items SET raw = '{}' WHERE raw IS NULL")
    with op.batch_alter_table('feedback_items', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.JSON(), nullable=False,
                              comment='the request as received (personal data included)',
                              existing_comment='the request as received (personal data included); NULL once past '
                                               'INGEST_RAW_RETENTION_DAYS')
