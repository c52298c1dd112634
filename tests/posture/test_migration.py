"""The posture migration branch on both backends: up, down, up again, through `dbmon db upgrade`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from monitor_app.store.migrate import alembic_config, current_revision, upgrade

TABLES = {"posture_findings", "posture_state"}


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


def test_it_creates_and_drops_the_posture_tables(url, tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor_app.cli.main", "db", "upgrade"], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "DBMON_DATABASE_URL": url, "DBMON_DATA_DIR": str(tmp_path),
                               "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert TABLES <= _tables(url) and "0005_posture" in current_revision(url)
    command.downgrade(alembic_config(url), "posture@0001")
    tables = _tables(url)
    assert not TABLES & tables and "assets" in tables and "alert_rules" in tables
    upgrade(url)
    assert TABLES <= _tables(url)
