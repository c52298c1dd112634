"""The analysis migration branch on both backends: up, down to before it, up again."""

from __future__ import annotations

from alembic import command

from monitor_app.store.migrate import alembic_config, current_revision, head_revision, upgrade
from tests.services import table_names

TABLES = {"series_detector_states", "metric_anomalies"}


def test_it_creates_and_drops_the_detector_and_anomaly_tables(blank_store_url):
    upgrade(blank_store_url)
    assert TABLES <= table_names(blank_store_url)
    assert current_revision(blank_store_url) == head_revision(blank_store_url)
    command.downgrade(alembic_config(blank_store_url), "merge_0003")
    tables = table_names(blank_store_url)
    assert not TABLES & tables and "metric_series" in tables
    upgrade(blank_store_url)
    assert TABLES <= table_names(blank_store_url)
