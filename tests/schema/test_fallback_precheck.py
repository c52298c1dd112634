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


def test_an_idle_round_connects_only_to_read_the_counters_and_to_the_sweeps_share(store):
    databases = [create_pg_database("dbmon_fallback") for _ in range(5)]
    budget = ConnectionBudget(store, budget=1)
    try:
        urls = [url for _, url in databases]
        server = server_key_from_dsn(urls[0])
        known = {i: marker(url) for i, url in enumerate(urls)}
        changed: list[int] = []
        # One database of five per round from the sweep (5 databases * 1 s / 5 s).
        fallback = FallbackPrecheck(server, budget, changed.append, interval=1, known_marker=known.get,
                                    sweep_seconds=5)
        fallback.set_targets([Target(i, server, url, None) for i, url in enumerate(urls)])
        fallback.run_round()
        assert fallback.direct_checks == 5  # nothing counted yet: each database once

        checks = fallback.direct_checks
        assert fallback.run_round() == 0
        idle = fallback.direct_checks - checks
        # The sweep's one, and at most one more whose counters autovacuum happened to move.
        assert 1 <= idle <= 2

        conn = psycopg2.connect(urls[3])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE appeared (id integer)")
        conn.close()
        assert fallback.run_round() == 1 and changed == [3]
        assert held_per_server(store).get(server) is None
    finally:
        budget.close()
        for name, _ in databases:
            drop_pg_database(name)


def test_every_database_comes_round_within_the_sweep_even_when_its_counters_never_move(store):
    databases = [create_pg_database("dbmon_fallback") for _ in range(4)]
    budget = ConnectionBudget(store, budget=1)
    try:
        urls = [url for _, url in databases]
        server = server_key_from_dsn(urls[0])
        known = {i: marker(url) for i, url in enumerate(urls)}
        fallback = FallbackPrecheck(server, budget, lambda asset_id: None, interval=1, known_marker=known.get,
                                    sweep_seconds=2)
        fallback.set_targets([Target(i, server, url, None) for i, url in enumerate(urls)])
        fallback.run_round()
        first = dict(fallback.checked_at)
        fallback.run_round()
        fallback.run_round()
        # Two per round (4 databases * 1 s / 2 s): after two more rounds each was checked again.
        assert all(fallback.checked_at[i] > first[i] for i in range(4))
    finally:
        budget.close()
        for name, _ in databases:
            drop_pg_database(name)
