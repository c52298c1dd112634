"""The connection kept between metric polls, under PostgreSQL's policy and MySQL's: reused for
its key only, kept while another slot of its server is free, closed when idle, replaced once
when the server closed it, closed (not tried again) on any other failure. Without a server
first, then against the real PostgreSQL and MariaDB."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import psycopg2
import pymysql
import pytest

from monitor_app.assets.connection_budget import ConnectionBudget, held_per_server
from monitor_app.metrics import mysql_connection, pg_polling
from monitor_app.metrics.kept_connections import KeptConnections
from monitor_app.metrics.mysql_connection import SessionLimits
from monitor_app.store.base import utcnow
from monitor_app.store.models.servers import MonitoredServer
from tests.metrics.mysql_servers import Account, admin_connect
from tests.services import pg_admin_connect

POLICIES = {"postgresql": pg_polling.KEEP_POLICY, "mysql": mysql_connection.KEEP_POLICY}


class FakeConnection:
    """What each policy reads of a connection: psycopg2's `closed`, PyMySQL's `open`."""

    def __init__(self, number: int):
        self.number, self.closed = number, False

    @property
    def open(self) -> bool:
        return not self.closed

    def fileno(self) -> int:
        raise OSError("no socket")  # closing it then cannot wait for the server's end

    def close(self):
        self.closed = True


@pytest.fixture()
def budget(sqlite_store):
    """Servers whose limits were read (cap 50): the budget of 3 decides."""
    with sqlite_store.session() as s:
        for server in ("db:1", "other:1"):
            s.add(MonitoredServer(server=server, cap=50, refusals=0, limits_read_at=utcnow()))
    made = ConnectionBudget(sqlite_store, budget=3)
    yield made
    made.close()


def held(budget) -> dict[str, int]:
    return {server: len(slots) for server, slots in held_per_server(budget.store).items()}


def opener():
    made: list[FakeConnection] = []

    def connect():
        made.append(FakeConnection(len(made) + 1))
        return made[-1]

    return made, connect


@pytest.fixture(params=sorted(POLICIES))
def pool(request, budget):
    kept = KeptConnections(budget, POLICIES[request.param], idle_seconds=25)
    yield kept
    kept.close()


def number(conn) -> int:
    return conn.number


def test_a_kept_connection_is_reused_for_the_same_server_and_key_only(pool, budget):
    made, connect = opener()
    assert [pool.run("db:1", "key", connect, number) for _ in range(3)] == [1, 1, 1]
    assert pool.run("db:1", "new password", connect, number) == 2
    assert made[0].closed and not made[1].closed and pool.kept_servers() == ["db:1"]
    assert pool.run("other:1", "key", connect, number) == 3
    assert held(budget) == {"db:1": 1, "other:1": 1}  # a kept connection keeps its slot
    pool.close()
    assert all(c.closed for c in made) and pool.kept_servers() == [] and held(budget) == {}


def test_a_connection_is_kept_only_while_another_slot_of_its_server_is_free(pool, budget):
    made, connect = opener()
    other = [budget.try_acquire("db:1", "schema check") for _ in range(2)]
    assert pool.run("db:1", "key", connect, number) == 1
    assert made[0].closed and pool.kept_servers() == [] and held(budget) == {"db:1": 2}
    budget.release(other[0])
    pool.run("db:1", "key", connect, number)
    assert pool.kept_servers() == ["db:1"] and held(budget) == {"db:1": 2}


def test_an_idle_kept_connection_is_closed_and_its_slot_given_back(pool, budget):
    made, connect = opener()
    pool.run("db:1", "key", connect, number)
    assert pool.reap(time.monotonic() + 10) == 0 and held(budget) == {"db:1": 1}
    assert pool.reap(time.monotonic() + 26) == 1
    assert made[0].closed and pool.kept_servers() == [] and held(budget) == {}


def test_a_connection_closed_under_the_work_or_whose_slot_was_taken_over_is_not_reused(pool, budget):
    made, connect = opener()
    pool.run("db:1", "key", connect, lambda c: c.close())
    assert pool.kept_servers() == [] and held(budget) == {}
    pool.run("db:1", "key", connect, number)
    pool._kept["db:1"].lease.lost.set()  # the renewer found the slot taken by another process
    assert pool.run("db:1", "key", connect, number) == 3 and made[1].closed
    assert pool.kept_servers() == ["db:1"] and held(budget) == {"db:1": 1}


def test_any_failure_but_a_lost_connection_closes_it_and_is_raised_once(pool, budget):
    made, connect = opener()
    pool.run("db:1", "key", connect, number)
    calls = []

    def failing(conn):
        calls.append(conn.number)
        raise ValueError("not what the server sends")

    with pytest.raises(ValueError):
        pool.run("db:1", "key", connect, failing)
    assert calls == [1] and made[0].closed and pool.kept_servers() == [] and held(budget) == {}


@pytest.fixture()
def mysql_pool(budget):
    kept = KeptConnections(budget, mysql_connection.KEEP_POLICY)
    yield kept
    kept.close()


def test_a_mysql_connection_idle_past_the_servers_wait_timeout_is_replaced(monkeypatch, mysql_pool):
    made, connect = opener()
    clock = [1000.0]
    monkeypatch.setattr("monitor_app.metrics.kept_connections.time.monotonic", lambda: clock[0])
    mysql_pool.run("db:1", "key", connect, number, idle_seconds=10)
    clock[0] += 8.5
    assert mysql_pool.run("db:1", "key", connect, number, idle_seconds=10) == 1
    clock[0] += 9.5  # within a second of wait_timeout: the server may have closed it
    assert mysql_pool.run("db:1", "key", connect, number, idle_seconds=10) == 2 and made[0].closed


def test_the_wait_timeout_a_connection_was_opened_with_decides_not_a_later_polls(monkeypatch, mysql_pool, budget):
    made, connect = opener()
    clock = [1000.0]
    monkeypatch.setattr("monitor_app.metrics.kept_connections.time.monotonic", lambda: clock[0])
    mysql_pool.run("db:1", "key", connect, number, idle_seconds=10)
    clock[0] += 9.5  # the interval grew meanwhile: the poll asks for 60 s, the server still closes at 10
    assert mysql_pool.run("db:1", "key", connect, number, idle_seconds=60) == 2 and made[0].closed
    assert mysql_pool.reap(clock[0] + 59) == 0 and mysql_pool.reap(clock[0] + 60) == 1  # the new one's 60 s
    assert held(budget) == {}


# -- against the real servers ----------------------------------------------------------------


@dataclass
class Live:
    """A real server under one engine's policy: its connections, and an administrator's hand on them."""

    engine: str
    server: str
    connect: Callable[[], object]
    session_id: Callable[[object], int]
    kill: Callable[[int], None]
    too_slow: str  # a statement past the session's statement limit


def _pg_session_id(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def _pg_kill(pid: int) -> None:
    admin = pg_admin_connect()
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # returns once the backend is gone
    admin.close()


def _mysql_session_id(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        return cur.fetchone()[0]


def _mysql_kill(thread_id: int) -> None:
    admin = admin_connect()
    with admin.cursor() as cur:
        cur.execute(f"KILL CONNECTION {int(thread_id)}")
    admin.close()


@pytest.fixture(scope="module")
def mysql_account():
    admin_connect().close()  # skips (fails in CI) when the server is not there
    made = Account()
    yield made
    made.drop()


def _postgres(request) -> Live:
    _, url = request.getfixturevalue("pg_database")
    dsn = psycopg2.extensions.parse_dsn(url)

    def connect():
        conn = psycopg2.connect(url, options="-c statement_timeout=200", application_name="dbmon-metrics")
        conn.autocommit = True
        return conn

    return Live("postgresql", f"{dsn.get('host', 'localhost')}:{dsn.get('port', 5432)}", connect, _pg_session_id,
                _pg_kill, "SELECT pg_sleep(2)")


def _mysql(request) -> Live:
    account = request.getfixturevalue("mysql_account")
    limits = SessionLimits(connect_timeout=3, statement_timeout=0.2, lock_timeout=1, idle_seconds=25)
    return Live("mysql", mysql_connection.server_of(account.connection()),
                lambda: mysql_connection.connect(account.connection(), account.password, limits),
                _mysql_session_id, _mysql_kill, "SELECT SLEEP(2)")


@pytest.fixture(params=["postgresql", "mysql"])
def live(request, sqlite_store):
    target = _postgres(request) if request.param == "postgresql" else _mysql(request)
    with sqlite_store.session() as s:  # limits known: the budget of 3 decides, none read through the pool
        s.add(MonitoredServer(server=target.server, cap=50, refusals=0, limits_read_at=utcnow()))
    budget = ConnectionBudget(sqlite_store, budget=3)
    kept = KeptConnections(budget, POLICIES[target.engine], idle_seconds=25)
    yield target, kept
    kept.close()
    budget.close()


def test_a_connection_the_server_closed_is_replaced_once_silently(live):
    target, kept = live
    first = kept.run(target.server, "key", target.connect, target.session_id)
    assert kept.run(target.server, "key", target.connect, target.session_id) == first and kept.opened == 1
    target.kill(first)
    seen: list[int] = []

    def poll(conn):
        seen.append(id(conn))
        return target.session_id(conn)

    replaced = kept.run(target.server, "key", target.connect, poll)
    assert replaced != first and kept.opened == 2 and len(seen) == 2  # the dead one, then a new one
    assert kept.run(target.server, "key", target.connect, target.session_id) == replaced
    assert kept.kept_servers() == [target.server] and held(kept.budget) == {target.server: 1}


def test_a_statement_timeout_on_a_kept_connection_is_raised_not_run_again(live):
    target, kept = live
    kept.run(target.server, "key", target.connect, target.session_id)
    runs: list[int] = []

    def slow(conn):
        runs.append(target.session_id(conn))
        with conn.cursor() as cur:
            cur.execute(target.too_slow)
            return cur.fetchall()

    started = time.monotonic()
    with pytest.raises((psycopg2.OperationalError, pymysql.err.OperationalError)):
        kept.run(target.server, "key", target.connect, slow)
    # Once: a second try on a new connection would only double the load on a server already slow.
    assert len(runs) == 1 and kept.opened == 1 and time.monotonic() - started < 1.5
    assert kept.kept_servers() == [] and held(kept.budget) == {}  # closed, its slot given back


def test_a_connection_the_work_closed_is_not_kept(live):
    target, kept = live
    kept.run(target.server, "key", target.connect, lambda conn: conn.close())
    assert kept.kept_servers() == [] and held(kept.budget) == {}
    kept.run(target.server, "key", target.connect, target.session_id)
    assert kept.opened == 2 and kept.kept_servers() == [target.server]
