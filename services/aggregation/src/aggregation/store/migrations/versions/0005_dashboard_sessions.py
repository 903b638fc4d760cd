"""dashboard sessions

The dashboard's cookie held the read key itself; it now holds a random session id, and this table maps the
id's SHA-256 to the API key id that opened the session and its expiry. Signing out deletes the row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 19:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False, comment="sha256 hex of the cookie's id"),
    sa.Column('key_id', sa.String(length=64), nullable=False,
              comment='the API key that opened it; revoking the key ends it'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_dashboard_sessions_expires', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_dashboard_sessions_expires')
    op.drop_table('dashboard_sessions')
