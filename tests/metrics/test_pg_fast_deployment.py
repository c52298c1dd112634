"""With nothing configured but the asset, real worker and beat processes poll it every 10 s, and
its medium tier at once and every minute, on one kept connection, in both modes."""

from __future__ import annotations

import psycopg2
import yaml
from sqlalchemy import select

from monitor_app.store.models import Asset, MetricPollState
from tests.harness import wait_for
from tests.metrics.pg_fast_helpers import latest


def metrics_backends(url: str) -> list[tuple[int, object]]:
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = 'dbmon-metrics' "
                    "AND datname = current_database()")
        rows = cur.fetchall()
    conn.close()
    return rows


def test_it_polls_a_declared_postgresql_asset_without_configuration(deployment, pg_database):
    name, url = pg_database
    deployment.write_config(yaml.safe_dump({"assets": [
        {"name": "orders-db", "engine": "postgresql", "host": "127.0.0.1", "port": 5432, "database": name,
         "user": "postgres", "insecure": True, "sslmode": "disable"}]}))
    deployment.start_worker("worker", "-c", "1")
    deployment.scan("assets.sync_config")
    deployment.start("beat", "beat")
    rt = deployment.runtime
    with rt.store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == "orders-db"))

    def polls() -> int:
        with rt.store.session() as s:
            state = s.get(MetricPollState, (asset_id, "pg_fast"))
            return 0 if state is None or state.polled_at is None else 1

    wait_for(polls, 30, 0.2, what="a first poll")
    first = metrics_backends(url)
    # The second poll has an interval behind it: rates appear.
    wait_for(lambda: latest(rt.store, asset_id, "pg.transactions_per_second") is not None, 30, 0.5,
             what="rates after a second poll" + deployment.log("worker")[-1500:])
    assert latest(rt.store, asset_id, "pg.max_connections") > 0
    # One worker process: one kept connection, the same backend across polls.
    assert len(first) == 1 and metrics_backends(url) == first
    # The medium tier's first poll is due at once, and goes through the same kept connection.
    wait_for(lambda: latest(rt.store, asset_id, "pg.bgwriter.buffers_alloc") is not None, 30, 0.5,
             what="a medium-tier poll" + deployment.log("worker")[-1500:])
    assert latest(rt.store, asset_id, "pg.statements_available") == 0
    assert metrics_backends(url) == first
