"""The audit branch's migration on both backends: up, down, up again, matching the model."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from monitor_app.store import Base
from monitor_app.store import models  # noqa: F401
from monitor_app.store.migrate import alembic_config, upgrade


def test_it_creates_and_drops_the_anonymous_audit_windows(blank_store_url):
    engine = create_engine(blank_store_url)
    try:
        upgrade(blank_store_url)
        assert "audit_anonymous_windows" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            drift = [d for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                     if "audit_anonymous_windows" in repr(d)]
        assert drift == []
        command.downgrade(alembic_config(blank_store_url), "audit@0001")
        tables = set(inspect(engine).get_table_names())
        assert "audit_anonymous_windows" not in tables and "audit_log" in tables
        upgrade(blank_store_url)
        assert "audit_anonymous_windows" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
