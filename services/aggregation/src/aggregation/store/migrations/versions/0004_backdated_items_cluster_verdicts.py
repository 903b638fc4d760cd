"""back-dated items, cluster verdicts

``feedback.backdated`` marks items created more than an hour before they were received (imports), which
the time-to-classify KPI leaves out; existing rows are marked from their own timestamps. The KPI's covering
index gains the column. ``clusters.duplicate_of`` / ``judged_items`` keep the verdict of a cluster found to
repeat an existing theme, so it is not judged again on every detector run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# aggregation.domain.items.BACKDATED_AFTER when this migration was written (a migration does not follow the code).
_BACKDATED_AFTER_SECONDS = 3600


def upgrade() -> None:
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duplicate_of', sa.String(length=256), nullable=True,
                                      comment='the existing theme it repeats, when judged not new'))
        batch_op.add_column(sa.Column('judged_items', sa.Integer(), nullable=True,
                                      comment='its items when judged a duplicate'))

    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backdated', sa.Boolean(), server_default=sa.false(), nullable=False,
                                      comment='created long before received: an import, not live feedback'))
        batch_op.drop_index('ix_feedback_created_classify')
        batch_op.create_index('ix_feedback_created_live_classify', ['created_at', 'backdated', 'classify_seconds'],
                              unique=False)
    _mark_backdated()


def _mark_backdated() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        lag = "EXTRACT(EPOCH FROM (received_at - created_at))"
        true = "true"
    else:  # SQLite keeps the UTC datetimes as ISO text
        lag = "(julianday(received_at) - julianday(created_at)) * 86400.0"
        true = "1"
    bind.execute(sa.text(f"UPDATE feedback SET backdated = {true} WHERE {lag} > :after"),
                 {"after": _BACKDATED_AFTER_SECONDS})


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_created_live_classify')
        batch_op.create_index('ix_feedback_created_classify', ['created_at', 'classify_seconds'], unique=False)
        batch_op.drop_column('backdated')

    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.drop_column('judged_items')
        batch_op.drop_column('duplicate_of')
