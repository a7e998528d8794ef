"""The run's journal: what was notified or went wrong (fills, refusals, breaker trips, stale feeds, errors, restarts),
kept whether or not a notification channel is configured; the daily digest reads it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40)),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_events_time", "events", ["time"])


def downgrade():
    "Back to 0005: the journal is dropped (`tradelab db downgrade` asks for it by name)."
    op.drop_index("ix_events_time", "events")
    op.drop_table("events")
