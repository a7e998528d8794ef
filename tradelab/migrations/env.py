"""Alembic environment for tradelab's state database.

tradelab runs migrations itself (`tradelab.store.open_store` upgrades to head); the connection is handed
over in `config.attributes["connection"]`, so there is no alembic.ini and no URL in any file.
"""
from alembic import context

from tradelab.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
