"""The per-server connection budget: slots as leases in the store, shared by every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import psycopg2
import pytest

from monitor_app.assets.connection_budget import (BudgetExhausted, ConnectionBudget, cap_from_limits,
                                                  held_per_server, refused_for_slots, release_slots_of_dead_processes, server_key,
                                                  server_key_from_dsn)
from monitor_app.store.base import utcnow
from monitor_app.store.models.servers import MonitoredServer
from tests.services import PG_ADMIN_URL, pg_admin_connect

SERVER = "db.example:5432"


@pytest.fixture(autouse=True)
def _give_back_slots(monkeypatch):
    """Every budget a test makes gives its slots back at the end, before its store goes away."""
    made = []
    original = ConnectionBudget.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ConnectionBudget, "__init__", init)
    yield
    for budget in made:
        budget.close()


def known(store, server: str = SERVER, cap: int = 50) -> None:
    """A server whose limits were read: the budget setting decides, not the one-slot start."""
    with store.session() as s:
        s.add(MonitoredServer(server=server, cap=cap, refusals=0, limits_read_at=utcnow()))


def test_the_cap_is_a_share_of_what_the_server_offers_and_never_zero():
    assert cap_from_limits(100, 3, 0.05) == 4
    assert cap_from_limits(20, 3, 0.05) == 1
    assert cap_from_limits(3, 3, 0.05) == 1
    assert cap_from_limits(1000, 13, 0.05) == 49


def test_databases_of_one_server_share_a_key():
    a = server_key({"host": "DB.example", "port": 5432, "database": "a"})
    assert a == server_key({"host": "db.example", "port": 5432, "database": "b"}) == "db.example:5432"
    assert server_key({"host": "db.example", "port": 5433}) != a
    assert server_key_from_dsn("host=db.example port=5432 dbname=c user=x") == a
    assert server_key({"host": "/run/pg"}) == "/run/pg:5432"


def test_the_budget_is_the_smaller_of_setting_and_server_cap_and_one_until_read(store):
    budget = ConnectionBudget(store, budget=3)
    assert budget.budget_for(None) == 1
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=1)) == 1
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=40)) == 3


def test_holders_together_never_get_more_slots_than_the_budget(store):
    known(store)
    first, second = ConnectionBudget(store, budget=3), ConnectionBudget(store, budget=3)
    leases = [first.try_acquire(SERVER, "a"), second.try_acquire(SERVER, "b"), first.try_acquire(SERVER, "c")]
    assert all(leases) and sorted(lease.slot for lease in leases) == [0, 1, 2]
    assert second.try_acquire(SERVER, "d") is None
    with pytest.raises(BudgetExhausted, match="deferred"):
        second.acquire(SERVER, "e", wait=0.3)
    first.release(leases[0])
    assert second.try_acquire(SERVER, "f") is not None
    assert len(held_per_server(store)[SERVER]) == 3
    # Another server has its own slots.
    known(store, "other:5432")
    assert first.try_acquire("other:5432", "g") is not None


def test_a_waiting_acquire_gets_the_slot_once_it_is_released(store):
    known(store)
    holder, waiter = ConnectionBudget(store, budget=1), ConnectionBudget(store, budget=1)
    lease = holder.try_acquire(SERVER, "held")
    threading.Timer(0.5, holder.release, args=(lease,)).start()
    started = time.monotonic()
    got = waiter.acquire(SERVER, "waiting", wait=10)
    assert got.slot == 0 and 0.3 < time.monotonic() - started < 5


def test_slots_of_processes_known_dead_are_given_back_and_no_others(store):
    known(store)
    dead = ConnectionBudget(store, budget=2, holder="host_a:4242:1a2b3c4d")
    alive = ConnectionBudget(store, budget=2, holder="host_a:42420:5e6f7a8b")
    elsewhere = ConnectionBudget(store, budget=3, holder="hostxa:4242:9c0d1e2f")
    dead.acquire(SERVER, "probe", wait=0)
    alive.acquire(SERVER, "probe", wait=0)
    elsewhere.acquire(SERVER, "probe", wait=0)

    assert release_slots_of_dead_processes(store, [4242], hostname="host_a") == 1
    assert sorted(slot.holder for slot in held_per_server(store)[SERVER]) == [
        "host_a:42420:5e6f7a8b", "hostxa:4242:9c0d1e2f"]
    assert release_slots_of_dead_processes(store, [], hostname="host-a") == 0


def test_an_expired_lease_is_taken_over_and_its_holder_learns_it_lost_it(store):
    known(store)
    now = utcnow()
    dead = ConnectionBudget(store, budget=1, lease_seconds=30, clock=lambda: now)
    lease = dead.try_acquire(SERVER, "stuck")
    later = ConnectionBudget(store, budget=1, clock=lambda: now + timedelta(seconds=20))
    assert later.try_acquire(SERVER, "too early") is None
    latest = ConnectionBudget(store, budget=1, clock=lambda: now + timedelta(seconds=31))
    assert latest.try_acquire(SERVER, "after expiry") is not None
    dead.renew()
    assert lease.lost.is_set()


def test_renewing_keeps_a_lease_alive_past_its_first_expiry(store):
    known(store)
    clock = [utcnow()]
    holder = ConnectionBudget(store, budget=1, lease_seconds=30, clock=lambda: clock[0])
    lease = holder.try_acquire(SERVER, "listen")
    clock[0] += timedelta(seconds=20)
    assert holder.renew() == 1 and not lease.lost.is_set()
    other = ConnectionBudget(store, budget=1, clock=lambda: clock[0] + timedelta(seconds=15))
    assert other.try_acquire(SERVER, "x") is None  # 35 s after the start, but 15 s after the renewal


def test_a_refusing_server_is_backed_off_by_every_holder(store):
    known(store)
    first, second = ConnectionBudget(store, refusal_backoff=60), ConnectionBudget(store)
    first.back_off(SERVER, psycopg2.OperationalError("FATAL:  sorry, too many clients already"))
    with pytest.raises(BudgetExhausted, match="backing off"):
        second.try_acquire(SERVER, "probe")
    with store.session() as s:
        row = s.get(MonitoredServer, SERVER)
        assert row.refusals == 1 and "too many clients" in row.last_refusal
    assert refused_for_slots(Exception("FATAL:  remaining connection slots are reserved for superuser"))
    assert not refused_for_slots(Exception("password authentication failed"))


def test_the_first_connection_reads_the_servers_limits(store):
    pg_admin_connect().close()
    budget = ConnectionBudget(store, budget=3, share=0.05)
    server = "127.0.0.1:5432"
    with budget.connection(server, "test", lambda: psycopg2.connect(PG_ADMIN_URL, application_name="dbmon-test")):
        pass
    with store.session() as s:
        row = s.get(MonitoredServer, server)
        assert row.max_connections and row.cap == cap_from_limits(row.max_connections, row.reserved_connections, 0.05)
    assert held_per_server(store).get(server) is None  # given back


HOLDER = textwrap.dedent("""
    import sys, time
    from monitor_app.assets.connection_budget import ConnectionBudget
    from monitor_app.store.base import Store
    budget = ConnectionBudget(Store(sys.argv[1]), budget=3, lease_seconds=float(sys.argv[2]))
    held = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lease = budget.try_acquire("db.example:5432", "test")
        if lease:
            held.append(lease)
        time.sleep(0.02)
    print(len(held), flush=True)
    time.sleep(60)
""")


@pytest.mark.slow
def test_separate_processes_share_the_cap_and_a_killed_holders_slots_expire(store):
    known(store)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, store.url, "3"], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    try:
        counts = [int(p.stdout.readline()) for p in procs]
        assert sum(counts) == 3, counts  # four processes racing for three slots get three in all
        assert len(held_per_server(store)[SERVER]) == 3
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait(5)
        budget = ConnectionBudget(store, budget=3)
        assert budget.try_acquire(SERVER, "right after the kill") is None  # the dead still hold them...
        lease = budget.acquire(SERVER, "after expiry", wait=10)  # ...until their leases expire
        assert lease.slot in (0, 1, 2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


def test_a_closed_connection_has_left_the_server_before_its_slot_is_given_back():
    from monitor_app.assets.connection_budget import close_fully

    watcher = pg_admin_connect()
    try:
        for _ in range(5):
            conn = psycopg2.connect(PG_ADMIN_URL, application_name="dbmon-test-close")
            pid = conn.info.backend_pid
            close_fully(conn)
            with watcher.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                assert cur.fetchone()[0] == 0
    finally:
        watcher.close()


def test_the_servers_migration_branch_goes_down_and_up_again(blank_store_url):
    from alembic import command

    from monitor_app.store.migrate import alembic_config, current_revision, head_revision, upgrade
    from tests.services import table_names

    upgrade(blank_store_url)
    assert {"monitored_servers", "server_connection_slots"} <= table_names(blank_store_url)
    assert current_revision(blank_store_url) == head_revision(blank_store_url)
    command.downgrade(alembic_config(blank_store_url), "merge_0001")
    assert not {"monitored_servers", "server_connection_slots"} & table_names(blank_store_url)
    upgrade(blank_store_url)
    assert "server_connection_slots" in table_names(blank_store_url)


def test_a_stopping_process_stops_waiting_for_slots_at_once(store):
    known(store)
    holder, stopping = ConnectionBudget(store, budget=1), ConnectionBudget(store, budget=1)
    assert holder.try_acquire(SERVER, "held") is not None
    threading.Timer(0.5, stopping.stop_waiting).start()
    started = time.monotonic()
    with pytest.raises(BudgetExhausted, match="this process is stopping"):
        stopping.acquire(SERVER, "would wait a minute", wait=60)
    assert time.monotonic() - started < 3


def test_a_servers_own_budget_replaces_the_default_within_the_share_of_its_limits(store):
    overrides = {SERVER: 5}
    budget = ConnectionBudget(store, budget=3, overrides=lambda: overrides)
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=40)) == 5
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=4)) == 4  # never beyond the share
    assert budget.budget_for(MonitoredServer(server="other:5432", cap=40)) == 3
    assert budget.configured(SERVER) == (5, "config") and budget.configured("other:5432") == (3, "setting")
    overrides[SERVER] = 1
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=40)) == 1


def test_a_lowered_budget_counts_the_slots_still_held_above_it(store):
    known(store)
    overrides = {SERVER: 4}
    budget = ConnectionBudget(store, budget=3, overrides=lambda: overrides)
    leases = [budget.try_acquire(SERVER, "work") for _ in range(4)]
    assert all(leases) and budget.try_acquire(SERVER, "fifth") is None
    overrides[SERVER] = 2  # the config file changed while four slots are held
    budget.release(leases[0])
    budget.release(leases[1])
    assert budget.try_acquire(SERVER, "while two are held above") is None
    budget.release(leases[3])
    assert budget.try_acquire(SERVER, "one below the new budget") is not None


def test_an_unreadable_override_leaves_the_default_in_force(store):
    def broken() -> dict:
        raise RuntimeError("config gone")

    budget = ConnectionBudget(store, budget=3, overrides=broken)
    assert budget.budget_for(MonitoredServer(server=SERVER, cap=40)) == 3
