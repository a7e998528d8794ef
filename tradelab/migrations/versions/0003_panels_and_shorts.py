"""Runs may trade a panel (several symbols in `runs.symbol`, comma-separated: no length limit), and the paper broker
keeps what shorts need: the free cash (cash not backing shorts), each short position's debt,
when it opened and its stops' reference prices, and each order's intent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("symbol", type_=sa.Text, existing_type=sa.String(40), existing_nullable=False)
    with op.batch_alter_table("paper_accounts") as batch:
        batch.add_column(sa.Column("free_cash", sa.Float))
    with op.batch_alter_table("paper_positions") as batch:
        batch.add_column(sa.Column("debt", sa.Float))
        batch.add_column(sa.Column("opened_at", sa.DateTime))
        batch.add_column(sa.Column("sl_price", sa.Float))
        batch.add_column(sa.Column("tp_price", sa.Float))
    with op.batch_alter_table("paper_orders") as batch:
        batch.add_column(sa.Column("intent", sa.String(16)))


def downgrade():
    "Back to 0002; a run whose symbols are longer than 40 characters stops the downgrade on PostgreSQL."
    with op.batch_alter_table("paper_orders") as batch:
        batch.drop_column("intent")
    with op.batch_alter_table("paper_positions") as batch:
        for column in ("tp_price", "sl_price", "opened_at", "debt"):
            batch.drop_column(column)
    with op.batch_alter_table("paper_accounts") as batch:
        batch.drop_column("free_cash")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("symbol", type_=sa.String(40), existing_type=sa.Text, existing_nullable=False)
