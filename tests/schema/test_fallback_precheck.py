"""The fallback pre-check: databases walked in turn through one slot; a moved marker asks for a check."""

from __future__ import annotations

import psycopg2

from monitor_app.assets.connection_budget import ConnectionBudget, held_per_server, server_key_from_dsn
from monitor_app.schema import precheck
from monitor_app.schema.fallback_precheck import FallbackPrecheck
from monitor_app.schema.listen_budget import Target
from tests.services import create_pg_database, drop_pg_database


def marker(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        return precheck.postgres_marker(conn)
    finally:
        conn.close()


def test_only_the_database_whose_marker_moved_is_sent_to_a_check(store):
    databases = [create_pg_database("dbmon_fallback") for _ in range(3)]
    budget = ConnectionBudget(store, budget=1)
    try:
        urls = [url for _, url in databases]
        server = server_key_from_dsn(urls[0])
        known = {i: marker(url) for i, url in enumerate(urls)}
        changed: list[int] = []
        fallback = FallbackPrecheck(server, budget, changed.append, interval=5, known_marker=known.get)
        fallback.set_targets([Target(i, server, url, None) for i, url in enumerate(urls)])
        assert fallback.run_round() == 0 and changed == []

        conn = psycopg2.connect(urls[1])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE appeared (id integer)")
        conn.close()
        assert fallback.run_round() == 1 and changed == [1]
        assert fallback.run_round() == 0 and changed == [1]  # seen once, asked once
        assert held_per_server(store).get(server) is None  # the slot is given back after each round
    finally:
        budget.close()
        for name, _ in databases:
            drop_pg_database(name)
