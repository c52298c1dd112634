"""Migration 0002 on both backends: up, down, up again."""

from __future__ import annotations

from alembic import command

from monitor_app.store.migrate import alembic_config, upgrade
from tests.services import table_names


def test_it_creates_and_drops_the_container_tables(blank_store_url):
    upgrade(blank_store_url)
    assert {"container_states", "container_event_cursors"} <= table_names(blank_store_url)
    command.downgrade(alembic_config(blank_store_url), "containers@0001")
    tables = table_names(blank_store_url)
    assert "container_states" not in tables and "container_event_cursors" not in tables and "assets" in tables
    upgrade(blank_store_url)
    assert {"container_states", "container_event_cursors"} <= table_names(blank_store_url)
