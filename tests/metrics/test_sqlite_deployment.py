"""A declared SQLite file is polled by real worker and beat processes with nothing configured, in both modes."""

from __future__ import annotations

import sqlite3

import yaml
from sqlalchemy import select

from monitor_app.store.models import Asset
from tests.harness import wait_for
from tests.metrics.pg_fast_helpers import latest


def test_it_polls_a_declared_sqlite_file_without_configuration(deployment, tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    # Polls every second, so the test sees a rate behind the first one.
    deployment.write_config(yaml.safe_dump({
        "assets": [{"name": "app-db", "engine": "sqlite", "path": str(path)}],
        "metrics": {"sqlite_interval": 1}}))
    deployment.start_worker("worker", "-c", "1")
    deployment.scan("assets.sync_config")
    deployment.start("beat", "beat")
    rt = deployment.runtime
    with rt.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == "app-db"))

    wait_for(lambda: latest(rt.store, asset_id, "sqlite.user_version") == 3, 30, 0.2,
             what="a first poll" + deployment.log("worker")[-1500:])
    assert latest(rt.store, asset_id, "sqlite.integrity_ok") == 1.0  # the first poll checks integrity
    wait_for(lambda: latest(rt.store, asset_id, "sqlite.write_transactions_per_s") is not None, 30, 0.2,
             what="a rate after a second poll")
