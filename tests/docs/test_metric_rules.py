"""The documented rules on database metrics, each run against what a real collector stored:
a PgBouncer client queued for a server, and a private cluster whose WAL archiving fails, whose
transaction ids near the freeze limit and whose settings change."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import psycopg2
import pytest

from monitor_app.metrics import pg_medium, pg_slow, pgbouncer_tier
from tests.docs.test_yaml_examples import alert_operations_for, alerts, events_of
from tests.metrics.pgbouncer_process import PgBouncer
from tests.schema.conftest import add_asset, make_runtime


def test_pool_clients_waiting_sees_a_client_queued_in_a_real_pgbouncer(store, tmp_path, pg_database):
    name, url = pg_database
    server = urlparse(url)
    bouncer = PgBouncer({"appdb": f"host={server.hostname} port={server.port or 5432} dbname={name}"}, pool_size=1)
    bouncer.start()
    holder = waiter = None
    try:
        rt = make_runtime(store, tmp_path)
        asset_id = add_asset(store, name="pool", engine="pgbouncer", connection=bouncer.connection())
        engine = alert_operations_for(store, "PoolClientsWaiting")
        pgbouncer_tier.run_poll(rt, asset_id)
        assert engine.evaluate_metrics().signals == 1 and alerts(store) == []  # read, and nobody waits
        holder = psycopg2.connect(bouncer.dsn("appdb"))
        holder.cursor().execute("SELECT 1")  # holds the pool's one server in a transaction
        waiter = threading.Thread(target=lambda: psycopg2.connect(bouncer.dsn("appdb")).cursor().execute("SELECT 1"))
        waiter.start()
        time.sleep(0.5)
        pgbouncer_tier.run_poll(rt, asset_id)
        assert engine.evaluate_metrics().signals == 1
        assert [a.state for a in alerts(store)] == ["pending"]  # `for: 2m`
    finally:
        if holder is not None:
            holder.commit()
            holder.close()
        if waiter is not None:
            waiter.join(timeout=10)
        bouncer.stop()


@pytest.mark.slow
def test_archiving_wraparound_and_setting_rules_on_a_private_cluster(sqlite_store, tmp_path):
    from tests.posture.clusters import PrivateCluster

    cluster = PrivateCluster()
    try:
        # The lowest freeze limit PostgreSQL accepts, so 80 % of it is reached in a second or two.
        cluster.start(listen="", archive_mode="on", archive_command="false", autovacuum="off",
                      autovacuum_freeze_max_age="100000")
        rt = make_runtime(sqlite_store, tmp_path)
        asset_id = add_asset(sqlite_store, name="cluster-db", engine="postgresql", connection=cluster.connection())
        pg_slow.run_poll(rt, asset_id)  # the settings baseline
        cluster.run("CREATE TABLE burn (i int)",
                    # One subtransaction per row, each with a transaction id of its own.
                    "DO $$ BEGIN FOR i IN 1..85000 LOOP BEGIN INSERT INTO burn VALUES (i); "
                    "EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$",
                    "SELECT pg_switch_wal()", "ALTER SYSTEM SET work_mem = '7MB'", "SELECT pg_reload_conf()")
        time.sleep(0.5)
        assert pg_slow.run_poll(rt, asset_id)["settings_changed"] == ["work_mem"]
        wraparound = alert_operations_for(sqlite_store, "WraparoundNear")
        assert wraparound.evaluate_metrics().signals == 1
        assert [(a.state, a.severity) for a in alerts(sqlite_store)] == [("firing", "critical")]

        archiving = alert_operations_for(sqlite_store, "WalArchivingFailing")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pg_medium.run_poll(rt, asset_id)
            archiving.evaluate_metrics()
            if len(alerts(sqlite_store)) == 2:
                break
            time.sleep(1)  # the archiver retries a failed segment every few seconds
        assert sorted((a.rule, a.state) for a in alerts(sqlite_store)) == [("WalArchivingFailing", "pending"),
                                                                           ("WraparoundNear", "firing")]

        changed = alert_operations_for(sqlite_store, "SettingChanged")
        assert changed.evaluate_events(events_of(sqlite_store, "pg.setting_changed")).fired == 1
        rt.pg_sessions.close()
    finally:
        cluster.stop()
