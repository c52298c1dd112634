"""Migration 0002 on both backends: up, down, up again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from monitor_app.store.migrate import alembic_config, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path, pg_database):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    return pg_database[1].replace("postgresql://", "postgresql+psycopg2://", 1)


def _tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_it_creates_and_drops_the_container_tables(url):
    upgrade(url)
    assert {"container_states", "container_event_cursors"} <= _tables(url)
    command.downgrade(alembic_config(url), "containers@0001")
    tables = _tables(url)
    assert "container_states" not in tables and "container_event_cursors" not in tables and "assets" in tables
    upgrade(url)
    assert {"container_states", "container_event_cursors"} <= _tables(url)
