"""The audit log of the API's write actions (the kill switch): every attempt, allowed or refused; and an index that
finds a run's refused decisions without scanning all of them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(40)),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_decisions_run_verdict", "decisions", ["run_id", "verdict"])


def downgrade():
    "Back to 0006: the audit log is dropped (`tradelab db downgrade` asks for it by name)."
    op.drop_index("ix_decisions_run_verdict", "decisions")
    op.drop_table("audit")
