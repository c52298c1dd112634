"""The posture migration branch on both backends: up, down, up again, through `dbmon db upgrade`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command

from monitor_app.store.migrate import alembic_config, current_revision, head_revision, upgrade
from tests.services import table_names

TABLES = {"posture_findings", "posture_state"}


@pytest.mark.slow  # a CLI process
def test_it_creates_and_drops_the_posture_tables(blank_store_url, tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor_app.cli.main", "db", "upgrade"], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "DBMON_DATABASE_URL": blank_store_url, "DBMON_DATA_DIR": str(tmp_path),
                               "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert TABLES <= table_names(blank_store_url) and current_revision(blank_store_url) == head_revision(blank_store_url)
    command.downgrade(alembic_config(blank_store_url), "posture@0001")
    tables = table_names(blank_store_url)
    assert not TABLES & tables and "assets" in tables and "alert_rules" in tables
    upgrade(blank_store_url)
    assert TABLES <= table_names(blank_store_url)
