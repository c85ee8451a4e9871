"""scheduler heartbeats: the leader's sign of life for readyz and metrics

Revision ID: aa30039e3bad
Revises: fcb2795c01c6
Create Date: 2026-12-02 12:09:00.483755

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'aa30039e3bad'
down_revision = 'fcb2795c01c6'
branch_labels = None
depends_on = None


def upgrade():
    # One row per scheduler name, upserted by its leader every ~10 s (app/reminders/heartbeat.py).
    op.create_table('scheduler_heartbeats',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('beat_at', sa.DateTime(), nullable=False),
    sa.Column('leading_since', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_heartbeats'))
    )


def downgrade():
    op.drop_table('scheduler_heartbeats')
