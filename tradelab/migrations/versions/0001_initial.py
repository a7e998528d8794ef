"""The runner's state: runs, heartbeats, decisions, orders, fills, positions, equity, and the paper broker's books.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("strategy", sa.String(80), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("exchange", sa.String(40), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("feed", sa.String(16), nullable=False),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stop_reason", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.Column("last_bar", sa.DateTime),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("health_port", sa.Integer),
        sa.Column("kill_requested", sa.Boolean, nullable=False),
        sa.Column("kill_flatten", sa.Boolean, nullable=False),
    )
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("last_bar", sa.DateTime),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("ix_heartbeats_run_time", "heartbeats", ["run_id", "time"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("bar_time", sa.DateTime, nullable=False),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("signal", sa.String(16), nullable=False),
        sa.Column("position", sa.Float, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("client_order_id", sa.String(40)),
        sa.Column("latency_ms", sa.Float),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("run_id", "symbol", "bar_time", name="uq_decisions_run_symbol_bar"),
    )
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("bar_time", sa.DateTime, nullable=False),
        sa.Column("intent", sa.String(16), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", sa.Float),
        sa.Column("notional", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("broker_order_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_orders_run_status", "orders", ["run_id", "status"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("client_order_id", sa.String(40), sa.ForeignKey("orders.client_order_id"), nullable=False),
        sa.Column("fill_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("qty", sa.Float, nullable=False),
        sa.Column("fee", sa.Float, nullable=False),
        sa.Column("fee_currency", sa.String(16)),
        sa.UniqueConstraint("client_order_id", "fill_id", name="uq_fills_order_fill"),
    )
    op.create_table(
        "positions",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("symbol", sa.String(40), primary_key=True),
        sa.Column("qty", sa.Float, nullable=False),
        sa.Column("avg_price", sa.Float),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "equity",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("bar_time", sa.DateTime, primary_key=True),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("position_value", sa.Float, nullable=False),
        sa.Column("equity", sa.Float, nullable=False),
    )
    op.create_table(
        "paper_accounts",
        sa.Column("account", sa.String(40), primary_key=True),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("initial_cash", sa.Float, nullable=False),
    )
    op.create_table(
        "paper_positions",
        sa.Column("account", sa.String(40), sa.ForeignKey("paper_accounts.account"), primary_key=True),
        sa.Column("symbol", sa.String(40), primary_key=True),
        sa.Column("qty", sa.Float, nullable=False),
    )
    op.create_table(
        "paper_orders",
        sa.Column("client_order_id", sa.String(40), primary_key=True),
        sa.Column("account", sa.String(40), sa.ForeignKey("paper_accounts.account"), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", sa.Float),
        sa.Column("notional", sa.Float),
        sa.Column("placed_bar", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("fill_time", sa.DateTime),
        sa.Column("fill_price", sa.Float),
        sa.Column("fill_qty", sa.Float),
        sa.Column("fee", sa.Float),
    )
    op.create_index("ix_paper_orders_account_status", "paper_orders", ["account", "status"])


def downgrade():
    for name in ("paper_orders", "paper_positions", "paper_accounts", "equity", "positions", "fills", "orders",
                 "decisions", "heartbeats", "runs"):
        op.drop_table(name)
