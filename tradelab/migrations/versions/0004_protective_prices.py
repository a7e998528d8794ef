"""A run's protective order keeps its levels: the stop price and the limit (take-profit) price it rests at the venue
with, so an order recorded before a crash is sent after the restart exactly as it was decided; the paper account
remembers the last bar it executed, so a bar seen again after a restart is not executed twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("stop_price", sa.Float))
        batch.add_column(sa.Column("limit_price", sa.Float))
    with op.batch_alter_table("paper_accounts") as batch:
        batch.add_column(sa.Column("booked_through", sa.DateTime))


def downgrade():
    with op.batch_alter_table("paper_accounts") as batch:
        batch.drop_column("booked_through")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("limit_price")
        batch.drop_column("stop_price")
