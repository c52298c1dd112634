"""The collectors migration branch on both backends: up, down, up again."""

from __future__ import annotations

from alembic import command

from monitor_app.store.migrate import alembic_config, current_revision, head_revision, upgrade
from tests.services import table_names


def test_it_creates_and_drops_the_collector_health_table(blank_store_url):
    upgrade(blank_store_url)
    assert "collector_health" in table_names(blank_store_url)
    assert current_revision(blank_store_url) == head_revision(blank_store_url)
    command.downgrade(alembic_config(blank_store_url), "collectors@0001")
    tables = table_names(blank_store_url)
    assert "collector_health" not in tables and "assets" in tables and "posture_state" in tables
    upgrade(blank_store_url)
    assert "collector_health" in table_names(blank_store_url)
