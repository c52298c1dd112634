"""Alembic environment: the URL comes from the caller (dbmon db upgrade), never from an ini file."""

from alembic import context
from sqlalchemy import pool

from monitor_app.store import Base
from monitor_app.store import models  # noqa: F401  (fills Base.metadata)
from monitor_app.store.base import make_sql_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    sql_engine = make_sql_engine(url, poolclass=pool.NullPool) if url.startswith("sqlite") else make_sql_engine(url)
    with sql_engine.connect() as conn:
        _run(conn)
    sql_engine.dispose()


def _run(connection) -> None:
    # Batch mode lets ALTER-heavy migrations run on SQLite by rebuilding the table.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
