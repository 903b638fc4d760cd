"""delivery fan-out key and result: a loop_closed insight's deliveries, one per customer; what a sent delivery made

The unique key of a delivery grows from (event, rule, channel) to (event, rule, channel, fanout_key): one event of
a loop_closed insight queues one delivery per customer. Existing rows get an empty fan-out key, so their
uniqueness is unchanged. ``result`` (the created tracker issue, the reply's conversation) is null for older rows.

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
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fanout_key', sa.String(length=300), server_default='', nullable=False,
                                      comment='customer:<id> of a loop_closed insight routed per customer; empty '
                                              'otherwise'))
        batch_op.add_column(sa.Column('result', sa.Text(), nullable=True,
                                      comment='what the target made of the sent delivery: the created issue, the '
                                              "reply's conversation"))
        batch_op.alter_column('status',
               existing_type=sa.VARCHAR(length=16),
               comment='pending | succeeded | failed | digested | paused | skipped',
               existing_comment='pending | succeeded | failed | digested | paused',
               existing_nullable=False)
        batch_op.drop_constraint('uq_deliveries_event_rule_channel', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_event_rule_channel_fanout',
                                          ['event_id', 'rule_id', 'channel_index', 'fanout_key'])


def downgrade() -> None:
    # Rows that differ only by fan-out key cannot keep the old key: keep the first of each.
    op.execute("DELETE FROM deliveries WHERE fanout_key <> '' AND id NOT IN (SELECT MIN(id) FROM deliveries "
               "GROUP BY event_id, rule_id, channel_index)")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deliveries_event_rule_channel_fanout', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_event_rule_channel', ['event_id', 'rule_id', 'channel_index'])
        batch_op.alter_column('status',
               existing_type=sa.VARCHAR(length=16),
               comment='pending | succeeded | failed | digested | paused',
               existing_comment='pending | succeeded | failed | digested | paused | skipped',
               existing_nullable=False)
        batch_op.drop_column('result')
        batch_op.drop_column('fanout_key')
