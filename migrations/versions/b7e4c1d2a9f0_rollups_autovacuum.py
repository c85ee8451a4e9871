"""coverage roll-ups: vacuum their tables after a small share of changed rows (PostgreSQL)

The midnight coverage_refresh rewrites a few thousand of merchant_scopes' millions of rows; at
autovacuum's default 20 % threshold the dead versions stay, and the overview's "rows past their
changes_at" scan reads them (6-9 ms on a province) until some far later vacuum.

Revision ID: b7e4c1d2a9f0
Revises: 557ca2ab962f
Create Date: 2026-12-02 16:20:00

"""
from alembic import op

revision = 'b7e4c1d2a9f0'
down_revision = '557ca2ab962f'
branch_labels = None
depends_on = None

TABLES = ("merchant_scopes", "market_coverage")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0.001, "
                   "autovacuum_analyze_scale_factor = 0.001)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)")
