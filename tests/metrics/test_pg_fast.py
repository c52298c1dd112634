"""The PostgreSQL fast tier against the real server: load, deadlocks, blocked sessions, reuse."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.metrics.pg_fast import due_assets
from monitor_app.store.models import MetricPollState
from monitor_app.store.models.servers import ServerConnectionSlot
from tests.metrics.pg_fast_helpers import (all_latest, polled_database, commits_and_rollbacks, failed_poll, health_events, latest,
                                           poll, real_deadlock, run_statements)
from tests.schema.conftest import add_asset, make_runtime, pg_connection
from tests.services import free_port


@pytest.fixture()
def target(store, tmp_path, pg_database):
    with polled_database(store, tmp_path, pg_database[1]) as (rt, asset_id):
        yield rt, asset_id, pg_database[1]


def test_it_reports_tps_and_the_rollback_ratio_of_real_load(target):
    rt, asset_id, url = target
    assert poll(rt, asset_id)["rates"] == "first poll"
    commits_and_rollbacks(url, commits=300, rollbacks=100)
    time.sleep(0.2)
    result = poll(rt, asset_id)
    assert result["rates"] == "interval" and result["problems"] == []
    store = rt.store
    tps = latest(store, asset_id, "pg.transactions_per_second")
    with store.session() as s:
        state = s.get(MetricPollState, (asset_id, "pg_fast"))
    assert tps and tps > 0
    # dbmon's own poll adds one read-only commit; the load's 400 transactions are all there.
    assert latest(store, asset_id, "pg.xact_commit") >= 300
    assert latest(store, asset_id, "pg.rollback_ratio") == pytest.approx(100 / 401, abs=0.02)
    assert 0 < latest(store, asset_id, "pg.cache_hit_ratio") <= 1
    assert state.counters["counters"]["xact_rollback"] >= 100
    values = all_latest(store, asset_id)
    assert all(v >= 0 for k, v in values.items() if "per_second" in k or "ratio" in k)
    assert values["pg.max_connections"] > 0 and "pg.wal_bytes_per_second" in values
    assert latest(store, asset_id, "pg.sessions_avg") is None  # no made-up names
    assert latest(store, asset_id, "pg.active_sessions_avg") is not None  # session counters on 14+


def test_a_real_deadlock_is_counted_in_its_interval(target):
    rt, asset_id, url = target
    poll(rt, asset_id)
    assert real_deadlock(url) == 1
    poll(rt, asset_id)
    assert latest(rt.store, asset_id, "pg.deadlocks_in_interval") == 1
    assert latest(rt.store, asset_id, "pg.deadlocks") == 1
    poll(rt, asset_id)
    assert latest(rt.store, asset_id, "pg.deadlocks_in_interval") == 0


def test_a_blocked_session_shows_as_blocked_waiting_on_a_lock_while_dbmon_sessions_do_not_count(target):
    rt, asset_id, url = target
    run_statements(url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    holder = psycopg2.connect(url, application_name="holder")
    own = psycopg2.connect(url, application_name="dbmon-posture")  # another dbmon session, idle in transaction
    waiter = psycopg2.connect(url, application_name="waiter")
    try:
        holder.cursor().execute("UPDATE t SET id = id WHERE id = 1")
        own.cursor().execute("SELECT 1")
        blocked = threading.Thread(target=lambda: waiter.cursor().execute("UPDATE t SET id = id WHERE id = 1"))
        blocked.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            poll(rt, asset_id)
            if latest(rt.store, asset_id, "pg.blocked_sessions") == 1:
                break
            time.sleep(0.2)
        store = rt.store
        assert latest(store, asset_id, "pg.blocked_sessions") == 1
        assert latest(store, asset_id, "pg.sessions_waiting", wait_event_type="Lock") == 1
        assert latest(store, asset_id, "pg.locks_waiting") >= 1
        assert latest(store, asset_id, "pg.locks", mode="ShareLock") >= 1  # the waiter on the holder's xid
        # The holder, not dbmon's own session idle in a transaction too.
        assert latest(store, asset_id, "pg.idle_in_transaction") == 1
        assert latest(store, asset_id, "pg.sessions_by_state", state="idle in transaction") == 1
        assert latest(store, asset_id, "pg.longest_transaction_seconds") > 0
        assert latest(store, asset_id, "pg.sessions_by_state", state="active") == 1
    finally:
        holder.rollback()
        blocked.join(timeout=10)
        for conn in (holder, own, waiter):
            conn.close()


def test_polls_reuse_one_connection_inside_the_budget(target):
    rt, asset_id, url = target
    for _ in range(3):
        poll(rt, asset_id)
    assert rt.pg_sessions.opened == 1
    with rt.store.session() as s:
        slots = s.scalars(select(ServerConnectionSlot)).all()
    assert len(slots) == 1 and slots[0].holder == rt.connection_budget.holder
    rt.pg_sessions.close()
    with rt.store.session() as s:
        assert s.scalars(select(ServerConnectionSlot)).all() == []


def test_the_cap_holds_across_processes_and_leaves_a_slot_for_other_work(store, tmp_path, pg_database):
    name, url = pg_database
    for i in range(4):
        (tmp_path / str(i)).mkdir()
    runtimes = [make_runtime(store, tmp_path / str(i)) for i in range(4)]
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(url))
    try:
        # Four processes (their own budget holders) polling the same server: 3 slots at most, and
        # connections are kept only while another slot stays free.
        for _ in range(3):
            for rt in runtimes:
                poll(rt, asset_id)
        kept = sum(len(rt.pg_sessions.kept_servers()) for rt in runtimes)
        with store.session() as s:
            slots = len(s.scalars(select(ServerConnectionSlot)).all())
        assert kept == slots <= 2
        conn = psycopg2.connect(url)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbmon-metrics' "
                        "AND datname = current_database()")
            assert cur.fetchone()[0] == kept
        conn.close()
    finally:
        for rt in runtimes:
            rt.pg_sessions.close()


def test_a_refused_target_is_one_event_and_no_gap_in_another_assets_polls(target, store):
    rt, asset_id, url = target
    dead = add_asset(store, name="dead-db", engine="postgresql",
                     connection={"host": "127.0.0.1", "port": free_port(), "database": "x", "user": "postgres",
                                 "sslmode": "disable", "insecure": True})
    errors = [failed_poll(rt, dead) for _ in range(3)]
    poll(rt, asset_id)
    assert errors[0].startswith("refused: ")
    assert health_events(store) == ["metrics.pg_fast.check_failed"]
    assert latest(store, asset_id, "pg.max_connections") > 0
    assert latest(store, dead, "pg.max_connections") is None


def test_due_assets_spread_polls_and_honour_per_asset_overrides(store, tmp_path):
    from datetime import datetime, timedelta, timezone

    rt = make_runtime(store, tmp_path, {"metrics": {"assets": {"off-db": {"enabled": False},
                                                                "slow-db": {"fast_interval": 600}}}})
    conn = {"host": "127.0.0.1", "port": 5432, "database": "x", "user": "postgres", "sslmode": "disable",
            "insecure": True}
    fast = add_asset(store, name="fast-db", engine="postgresql", connection=conn)
    slow = add_asset(store, name="slow-db", engine="postgresql", connection=conn)
    add_asset(store, name="off-db", engine="postgresql", connection=conn)
    add_asset(store, name="no-credentials", engine="postgresql", connection={"host": "127.0.0.1", "port": 5432})
    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
    assert due_assets(rt, t0) == [fast, slow]  # never polled: at once
    assert due_assets(rt, t0 + timedelta(seconds=1)) == []  # sent: not again before its next slot
    sent = [a for step in range(1, 61) for a in due_assets(rt, t0 + timedelta(seconds=step))]
    assert sent.count(fast) == 6 and sent.count(slow) <= 1


def test_a_poll_that_waited_past_its_interval_is_skipped_for_the_newer_one(target):
    from datetime import timedelta

    from monitor_app.metrics.pg_fast import run_poll
    from monitor_app.store.base import iso, utcnow

    rt, asset_id, _ = target
    result = run_poll(rt, asset_id, due_at=iso(utcnow() - timedelta(seconds=30)))
    assert result == {"asset_id": asset_id, "skipped": "a later poll superseded this one"}
    assert rt.pg_sessions.opened == 0
    assert run_poll(rt, asset_id, due_at=iso(utcnow()))["rates"] == "first poll"


def test_a_server_with_no_slot_to_spare_defers_the_poll_without_calling_the_target_failing(store, tmp_path,
                                                                                           pg_database):
    from monitor_app.assets.connection_budget import BudgetExhausted, server_key

    name, url = pg_database
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rt = make_runtime(store, tmp_path / "a", {"metrics": {"fast_interval": 2}})
    other = make_runtime(store, tmp_path / "b")
    connection = pg_connection(url)
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=connection)
    # Another process holds the one slot dbmon may use on a server whose limits it has not read yet.
    lease = other.connection_budget.acquire(server_key(connection), "schema check", wait=0)
    try:
        started = time.monotonic()
        with pytest.raises(BudgetExhausted):
            poll(rt, asset_id)
        assert time.monotonic() - started < 5  # half the 2 s interval, not the budget's 30 s wait
        assert health_events(store) == [] and rt.pg_sessions.opened == 0
    finally:
        other.connection_budget.release(lease)
    poll(rt, asset_id)
    rt.pg_sessions.close()


def test_a_port_that_does_not_speak_postgresql_is_a_failing_poll_not_a_crash(store, tmp_path):
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_junk():
        for _ in range(4):
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            with peer:
                peer.recv(1024)
                peer.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"\xff" * 64)

    server = threading.Thread(target=answer_junk, daemon=True)
    server.start()
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="not-postgres", engine="postgresql",
                         connection={"host": "127.0.0.1", "port": port, "database": "x", "user": "postgres",
                                     "sslmode": "disable", "insecure": True})
    try:
        error = failed_poll(rt, asset_id)
        assert error.split(":")[0] in ("refused", "error") and len(error) <= 520
        assert health_events(store) == ["metrics.pg_fast.check_failed"]
    finally:
        listener.close()
        rt.pg_sessions.close()
