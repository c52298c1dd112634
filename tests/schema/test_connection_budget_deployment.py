"""A server with few connections and many databases: dbmon's real processes stay inside the budget.

A private cluster with `max_connections = 20` and 30 databases carrying the event trigger; a
worker and the watcher run for real. Every connection dbmon holds there is sampled from
`pg_stat_activity` throughout: never more than the budget, never a "too many clients". A DDL in
a database outside the LISTEN set is still detected (by the fallback pre-check) and stored.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from sqlalchemy import select

from monitor_app.assets.connection_budget import held_per_server, server_key
from monitor_app.schema import event_trigger
from monitor_app.store.models import Asset
from monitor_app.store.models.schema import SchemaChangeSet
from tests.harness import wait_for
from tests.posture.clusters import PrivateCluster

DATABASES = 30
BUDGET = 3  # 20 - 3 superuser-reserved = 17 slots; a share of 0.2 of them is 3


class ActivitySampler:
    """The most connections dbmon held on the cluster at any one time, sampled every 50 ms."""

    def __init__(self, cluster: PrivateCluster):
        self.conn = cluster.connect()
        self.most, self.samples = 0, 0
        self.listened: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with self.conn.cursor() as cur:
                cur.execute("SELECT application_name, datname FROM pg_stat_activity "
                            "WHERE application_name LIKE 'dbmon%%'")
                rows = cur.fetchall()
            self.most = max(self.most, len(rows))
            self.listened = {datname for app, datname in rows if app == "dbmon-listener"}
            self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


@pytest.fixture()
def crowded_cluster():
    cluster = PrivateCluster()
    try:
        cluster.start(listen="", max_connections="20")
        cluster.run("CREATE DATABASE budget_template")
        event_trigger.install(cluster.dsn(database="budget_template"))
        cluster.run(*[f"CREATE DATABASE budget_{i:02d} TEMPLATE budget_template" for i in range(DATABASES)])
        yield cluster
    finally:
        cluster.stop()


def config(cluster: PrivateCluster) -> str:
    assets = "".join(f"  - name: db{i:02d}\n    engine: postgresql\n    host: {cluster.root}\n    port: {cluster.port}\n"
                     f"    database: budget_{i:02d}\n    user: postgres\n    sslmode: disable\n    insecure: true\n"
                     for i in range(DATABASES))
    return f"assets:\n{assets}schema:\n  event_triggers: true\n  check_interval: 3600\n"


def ddl(cluster: PrivateCluster, database: str, table: str) -> None:
    cluster.run(f"CREATE TABLE {table} (id integer PRIMARY KEY)", database=database)


def change_sets(deployment, asset_id: int) -> list[SchemaChangeSet]:
    with deployment.runtime.store.session() as s:
        return s.scalars(select(SchemaChangeSet).where(SchemaChangeSet.asset_id == asset_id)).all()


def test_dbmon_stays_inside_the_budget_and_still_sees_every_database(deployment, crowded_cluster):
    cluster = crowded_cluster
    deployment.env.update(DBMON_SERVER_CONNECTION_SHARE="0.2", DBMON_SERVER_CONNECTION_WAIT="60",
                          DBMON_SCHEMA_FALLBACK_INTERVAL="2", DBMON_WORKER_CONCURRENCY="3")
    deployment.write_config(config(cluster))
    with ActivitySampler(cluster) as sampler:
        deployment.start_worker()
        assert deployment.scan("assets.sync_config").status == "done"
        with deployment.runtime.store.session() as s:
            ids = {a.connection["database"]: a.id for a in s.scalars(select(Asset))}
        # Thirty baselines at once through three worker threads: all wait for the server's slots.
        runs = [deployment.runtime.dispatch("schema.check", {"asset_id": i}, requested_by="test") for i in ids.values()]
        for run_id in runs:
            run = deployment.wait_run(run_id, 120)
            assert run.status == "done" and run.result.get("baseline"), (run.error, run.result)

        deployment.start("watcher", "watcher", "--source", "pg_notify")
        wait_for(lambda: len(sampler.listened) == BUDGET - 1, 60, what="two listeners (budget less one)")
        listened = sorted(sampler.listened)
        outside = next(f"budget_{i:02d}" for i in range(DATABASES) if f"budget_{i:02d}" not in listened)

        ddl(cluster, outside, "outside_the_listen_set")
        started = time.monotonic()
        sets = wait_for(lambda: change_sets(deployment, ids[outside]), 30, what="change outside the LISTEN set stored")
        took = time.monotonic() - started
        assert sets[0].context["source"] == "precheck", sets[0].context

        ddl(cluster, listened[0], "inside_the_listen_set")
        sets = wait_for(lambda: change_sets(deployment, ids[listened[0]]), 30, what="change inside the LISTEN set stored")
        assert sets[0].context["source"] == "trigger", sets[0].context

        server = server_key({"host": str(cluster.root), "port": cluster.port})
        assert len(held_per_server(deployment.runtime.store).get(server, [])) <= BUDGET
        stopping = time.monotonic()
        deployment.kill("watcher", signal.SIGTERM)
        stopped_in = time.monotonic() - stopping
    assert sampler.samples > 100
    assert sampler.most <= BUDGET, f"dbmon held {sampler.most} connections at once; the budget is {BUDGET}"
    assert took < 15, f"pre-check took {took:.1f} s to get the change stored"
    assert stopped_in < 5, stopped_in
    assert "too many clients" not in (cluster.root / "log").read_text(errors="replace")
    assert "too many clients" not in deployment.log("worker") + deployment.log("watcher")
