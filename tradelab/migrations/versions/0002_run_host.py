"""Runs record the host of the process that holds them, beside its pid and health port.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255)))


def downgrade():
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("host")
