"""The model behind a learned strategy's decisions: the bundle's hash and the score, on each decision row (empty for
other strategies).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("model", sa.String(40), nullable=True))
        batch.add_column(sa.Column("score", sa.Float, nullable=True))


def downgrade():
    "Back to 0008: the two columns go (with the scores they held)."
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("score")
        batch.drop_column("model")
