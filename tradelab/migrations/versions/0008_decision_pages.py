"""A run's latest decisions without sorting all of them: an index on (run_id, id), which the dashboard's pages and
its latency read newest first (a year of minute bars is half a million decisions).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_decisions_run_id", "decisions", ["run_id", "id"])


def downgrade():
    "Back to 0007: only the index goes; no row is touched."
    op.drop_index("ix_decisions_run_id", "decisions")
