"""PgBouncer pools through a real pgbouncer in front of the shared PostgreSQL server."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.metrics.pgbouncer_tier import dispatch_due, run_poll
from monitor_app.store.models import Asset, Event
from tests.metrics.pg_fast_helpers import latest
from tests.metrics.pgbouncer_process import PgBouncer
from tests.schema.conftest import add_asset, make_runtime


@pytest.fixture()
def bouncer(pg_database):
    from urllib.parse import urlparse

    name, url = pg_database
    server = urlparse(url)  # the unit tier runs its own cluster on a port of its own
    b = PgBouncer({"appdb": f"host={server.hostname} port={server.port or 5432} dbname={name}"}, pool_size=1)
    b.start()
    yield b
    b.stop()


def add_bouncer(store, b: PgBouncer, user: str = "stats") -> int:
    return add_asset(store, name="pool", engine="pgbouncer", connection=b.connection(user))


def test_it_reads_pools_averages_and_lists_and_sees_a_client_waiting_for_a_server(store, tmp_path, bouncer):
    rt = make_runtime(store, tmp_path)
    asset_id = add_bouncer(store, bouncer)
    holder = psycopg2.connect(bouncer.dsn("appdb"))
    waiter_done = threading.Event()

    def waiter():  # the pool's one server is taken: this client waits for it
        conn = psycopg2.connect(bouncer.dsn("appdb"))
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
        waiter_done.set()

    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1")  # a transaction stays open, holding the server
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(1.2)
        result = run_poll(rt, asset_id)
        pool = {"database": "appdb", "user": "postgres"}
        assert latest(store, asset_id, "pgbouncer.clients_waiting", **pool) == 1
        assert latest(store, asset_id, "pgbouncer.clients_active", **pool) == 1
        assert latest(store, asset_id, "pgbouncer.servers_active", **pool) == 1
        assert latest(store, asset_id, "pgbouncer.max_wait_seconds", **pool) >= 1.0
        assert latest(store, asset_id, "pgbouncer.clients_waiting_total") == 1
        assert latest(store, asset_id, "pgbouncer.max_wait_seconds_any") >= 1.0
        assert latest(store, asset_id, "pgbouncer.used_clients") >= 2
        assert latest(store, asset_id, "pgbouncer.databases") >= 2  # appdb and the admin console
        assert latest(store, asset_id, "pgbouncer.avg_query_ms", database="appdb") >= 0
        assert result["samples"] > 10
        assert not waiter_done.is_set()
    finally:
        holder.commit()
        holder.close()
        thread.join(timeout=10)
    assert waiter_done.is_set()
    run_poll(rt, asset_id)
    assert latest(store, asset_id, "pgbouncer.clients_waiting_total") == 0


def test_a_role_the_console_refuses_and_a_stopped_pgbouncer_are_failures_reported_once(store, tmp_path, bouncer):
    rt = make_runtime(store, tmp_path)
    rt.settings.collector_failures_before_event = 1
    asset_id = add_bouncer(store, bouncer, user="app")  # neither in stats_users nor admin_users
    with pytest.raises(DbmonError, match="^missing privileges: .*not allowed"):
        run_poll(rt, asset_id)
    bouncer.stop()
    with pytest.raises(DbmonError, match="^refused: "):
        run_poll(rt, asset_id)
    with store.session() as s:
        assert [e.type for e in s.scalars(select(Event).where(Event.type.like("metrics.pgbouncer.%")))] == [
            "metrics.pgbouncer.check_failed"]


def test_declared_pgbouncer_assets_are_poolers_on_6432_polled_at_the_fast_interval(store, tmp_path):
    from datetime import datetime, timezone

    from monitor_app.assets.config_assets import sync_config_assets

    rt = make_runtime(store, tmp_path, {"assets": [
        {"name": "pool", "engine": "pgbouncer", "host": "127.0.0.1", "user": "stats", "insecure": True},
        {"name": "orders-db", "engine": "postgresql", "host": "127.0.0.1", "database": "orders",
         "insecure": True}]})
    with store.session() as s:
        sync_config_assets(s, rt.config, rt.credentials)
    with store.session() as s:
        pool = s.scalar(select(Asset).where(Asset.name == "pool"))
        assert (pool.kind, pool.connection["port"], pool.connection["database"]) == ("pooler", 6432, "pgbouncer")
        pool_id = pool.id
    sent = []
    rt.dispatch_many = lambda task, kwargs: sent.extend((task, k["asset_id"]) for k in kwargs)
    assert dispatch_due(rt, datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc))["asset_ids"] == [pool_id]
    assert sent == [("metrics.pgbouncer", pool_id)]


def test_a_pgbouncer_asset_needs_a_host():
    from monitor_app.config.declarative import parse_config_text
    from monitor_app.errors import ConfigError

    with pytest.raises(ConfigError, match="host is required for a pgbouncer asset"):
        parse_config_text("assets:\n  - name: pool\n    engine: pgbouncer\n")
