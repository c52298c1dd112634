"""MySQL and MariaDB connections inside the per-server connection budget, against real servers.

On the shared MariaDB: metrics polls, schema checks and probes of two databases, run at once by
three holders (three processes' budgets over one store), never hold more connections than the
budget, counted in the server's own process list; with every slot taken the work is deferred,
not failed. On a private MariaDB started with `--max-connections=20`: the limits read from it
set the cap, and once it is full (lowered to 10, MariaDB's least, and ten idle connections held:
"Too many connections"), or an account is past its `max_user_connections`, the server is backed
off, whichever path connected."""


from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pymysql
import pytest
from sqlalchemy import select, update

from monitor_app.assets.connection_budget import (BudgetExhausted, ConnectionBudget, cap_from_limits,
                                                  refused_for_slots, server_key)
from monitor_app.assets.reachability_check import run_check as probe_check
from monitor_app.errors import DbmonError
from monitor_app.metrics.mysql_tier import run_mysql_poll
from monitor_app.schema.check import run_check as schema_check
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event
from monitor_app.store.models.collectors import CollectorHealth
from monitor_app.store.models.servers import MonitoredServer
from tests.metrics.mysql_servers import PrivateMariaDB, add_mysql_asset, admin_connect, asset_connection
from tests.schema.conftest import make_runtime
from tests.schema.test_budgeted_checks import servers_api

SHARED = "127.0.0.1:3306"
RUN_SECONDS = 4.0


def test_mysql_servers_are_keyed_by_host_and_port_and_a_refusal_is_known_by_its_number():
    assert server_key({"host": "DB.example", "port": 3306, "database": "a"}, "mysql") == "db.example:3306"
    assert server_key({}, "mariadb") == "localhost:3306" and server_key({}) == "/var/run/postgresql:5432"
    assert server_key({"host": "db", "port": 5432}) != server_key({"host": "db"}, "mysql")

    def refused(errno: int, text: str) -> bool:
        return refused_for_slots(pymysql.err.OperationalError(errno, text), "mysql")

    assert refused(1040, "Zu viele Verbindungen")  # a server speaking German: the number says it
    assert refused(1203, "User x already has more than 'max_user_connections' active connections")
    assert refused(1226, "User 'x' has exceeded the 'max_user_connections' resource (current value: 2)")
    assert not refused(1226, "User 'x' has exceeded the 'max_questions' resource (current value: 2)")
    assert not refused(1045, "Access denied for user 'x'@'127.0.0.1' (using password: YES)")
    with pytest.raises(DbmonError) as wrapped:
        try:
            raise pymysql.err.OperationalError(1040, "Trop de connexions")
        except pymysql.MySQLError:
            raise DbmonError("refused: the server said no") from None  # as the metrics connector wraps it
    assert refused_for_slots(wrapped.value, "mariadb") and not refused_for_slots(wrapped.value)


class Databases:
    """Databases on one server and an account that may use them all (and read the server's status)."""

    def __init__(self, port: int = 3306, count: int = 2):
        self.port, self.user, self.password = port, f"dbmon_b_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
        self.names = [f"{self.user}_{i}" for i in range(count)]
        admin = admin_connect(port=port)
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))
            cur.execute(f"GRANT PROCESS, SLAVE MONITOR ON *.* TO '{self.user}'@'127.0.0.1'")
            for name in self.names:
                cur.execute(f"CREATE DATABASE `{name}`")
                cur.execute(f"CREATE TABLE `{name}`.orders (id INT PRIMARY KEY, total DECIMAL(10, 2))")
                cur.execute(f"GRANT ALL ON `{name}`.* TO '{self.user}'@'127.0.0.1'")
        admin.close()

    def assets(self, rt) -> list[int]:
        return [add_mysql_asset(rt, asset_connection(self.port, self.user, name), self.password, name=name)
                for name in self.names]

    def drop(self) -> None:
        admin = admin_connect(port=self.port)
        with admin.cursor() as cur:
            for name in self.names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"DROP USER IF EXISTS '{self.user}'@'127.0.0.1'")
        admin.close()


@pytest.fixture()
def databases():
    admin_connect().close()  # skips (fails in CI) when the shared server is not there
    made = Databases()
    yield made
    made.drop()


class ProcesslistSampler(threading.Thread):
    """Counts, every couple of milliseconds, the connections an account has open on the server.

    SHOW PROCESSLIST rather than information_schema.PROCESSLIST: the latter builds an on-disk
    temporary table per query, a load the shared server should not be put under in a tight loop."""

    def __init__(self, port: int, user: str):
        super().__init__(daemon=True)
        self.admin, self.user = admin_connect(port=port), user
        self.most, self.samples, self.seen = 0, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        with self.admin.cursor() as cur:
            while not self.done.wait(0.002):
                cur.execute("SHOW PROCESSLIST")
                count = sum(1 for row in cur.fetchall() if row[1] == self.user)
                self.most, self.samples, self.seen = max(self.most, count), self.samples + 1, self.seen + (count > 0)

    def stop(self) -> None:
        self.done.set()
        self.join(10)
        self.admin.close()


def shared_max_connections() -> int:
    admin = admin_connect()
    with admin.cursor() as cur:
        cur.execute("SELECT @@max_connections")
        value = int(cur.fetchone()[0])
    admin.close()
    return value


def repeat(work, outcomes: dict, until: float) -> None:
    """`work()` until `until`; each outcome counted: ran, deferred (no slot in time) or the error."""
    while time.monotonic() < until:
        try:
            work()
            outcomes["ran"] += 1
        except BudgetExhausted:
            outcomes["deferred"] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test, with what it was
            outcomes["errors"].append(repr(exc))


def test_polls_checks_and_probes_of_two_databases_never_hold_more_than_the_budget(store, tmp_path, databases):
    config = {"servers": [{"host": "127.0.0.1", "port": 3306, "connection_budget": 1}]}
    metrics, checks, probes = (make_runtime(store, tmp_path, config) for _ in range(3))  # three processes
    first, second = databases.assets(metrics)
    jobs = {"poll": lambda: (run_mysql_poll(metrics, first), run_mysql_poll(metrics, second)),
            "check": lambda: (schema_check(checks, first), schema_check(checks, second)),
            "probe": lambda: (probe_check(probes, first), probe_check(probes, second))}
    outcomes = {job: {"ran": 0, "deferred": 0, "errors": []} for job in jobs}
    sampler = ProcesslistSampler(3306, databases.user)
    sampler.start()
    until = time.monotonic() + RUN_SECONDS
    threads = [threading.Thread(target=repeat, args=(work, outcomes[job], until)) for job, work in jobs.items()]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sampler.stop()
        for rt in (metrics, checks, probes):
            rt.mysql_sessions.close()
            rt.connection_budget.close()
    assert all(not o["errors"] and o["ran"] >= 1 for o in outcomes.values()), outcomes
    # The server saw dbmon connected again and again, and never with two connections at once.
    assert sampler.samples > 200 and sampler.seen >= 10, (sampler.samples, sampler.seen)
    assert sampler.most == 1, (sampler.most, outcomes)

    (row,) = [item for item in servers_api(checks, store)["items"] if item["server"] == SHARED]
    assert (row["engine"], row["databases"], row["budget"], row["budget_from"]) == ("mariadb", 2, 1, "config")
    assert (row["max_connections"], row["reserved_connections"], row["held"]) == (shared_max_connections(), 0, 0)


def test_mysql_work_without_a_free_slot_is_deferred_not_failed(store, tmp_path, databases):
    rt = make_runtime(store, tmp_path)
    rt.settings.server_connection_wait = 0.3
    asset_id, _ = databases.assets(rt)
    assert schema_check(rt, asset_id)["asset_id"] == asset_id  # the first connection reads the limits
    with store.session() as s:
        budget = rt.connection_budget.budget_for(s.get(MonitoredServer, SHARED), SHARED)
    share = rt.settings.server_connection_share
    assert budget == min(rt.settings.server_connection_budget, cap_from_limits(shared_max_connections(), 0, share))

    other_process = ConnectionBudget(store, budget=rt.settings.server_connection_budget)
    leases = [other_process.try_acquire(SHARED, "busy") for _ in range(budget)]
    try:
        assert all(leases) and other_process.try_acquire(SHARED, "one more") is None
        (row,) = [item for item in servers_api(rt, store)["items"] if item["server"] == SHARED]
        assert row["held"] == row["budget"] == budget and {slot["purpose"] for slot in row["slots"]} == {"busy"}
        for run in (run_mysql_poll, schema_check, probe_check):
            with pytest.raises(BudgetExhausted, match="deferred"):
                run(rt, asset_id)
        with store.session() as s:
            assert s.scalars(select(CollectorHealth).where(CollectorHealth.failing.is_(True))).all() == []
            assert s.scalars(select(Event).where(Event.type.in_(
                ["asset.down", "schema.check_failed", "metrics.mysql.check_failed"]))).all() == []
            assert s.get(Asset, asset_id).status == "up"
    finally:
        other_process.close()
    # Once a slot is free, each runs; the poll keeps its connection (and slot) while others are free.
    assert run_mysql_poll(rt, asset_id)["asset_id"] == asset_id
    assert probe_check(rt, asset_id)["status"] == "up"
    assert servers_api(rt, store)["held"] == (1 if budget > 1 else 0)
    rt.mysql_sessions.close()
    assert servers_api(rt, store)["held"] == 0


@pytest.fixture(scope="module")
def small_server():
    """A private MariaDB that serves 20 connections, and an account on it without SUPER."""
    server = PrivateMariaDB(performance_schema=False)
    server.options.append("--max-connections=20")
    try:
        server.start()
        databases = Databases(server.port, count=1)
        yield server, databases
    finally:
        server.stop()


@pytest.mark.slow
def test_the_cap_is_the_share_of_what_the_server_reports(small_server, sqlite_store, tmp_path):
    server, databases = small_server
    rt = make_runtime(sqlite_store, tmp_path)
    rt.settings.server_connection_share, rt.settings.server_connection_budget = 0.25, 10
    (asset_id,) = databases.assets(rt)
    key = server_key(asset_connection(server.port, databases.user), "mariadb")
    assert probe_check(rt, asset_id)["status"] == "up"

    (row,) = [item for item in servers_api(rt, sqlite_store)["items"] if item["server"] == key]
    assert (row["max_connections"], row["reserved_connections"]) == (20, 0)
    assert row["budget"] == cap_from_limits(20, 0, 0.25) == 5  # the share, below the budget of 10 asked for
    leases = [rt.connection_budget.try_acquire(key, "work") for _ in range(6)]
    try:
        assert all(leases[:5]) and leases[5] is None
    finally:
        rt.connection_budget.close()


def backoff_of(store, key: str) -> MonitoredServer:
    with store.session() as s:
        return s.get(MonitoredServer, key)


def end_backoff(store, key: str) -> None:
    with store.session() as s:
        s.execute(update(MonitoredServer).where(MonitoredServer.server == key).values(backoff_until=None))


@pytest.mark.slow
def test_a_full_server_is_backed_off_whichever_path_met_its_refusal(small_server, sqlite_store, tmp_path):
    server, databases = small_server
    rt = make_runtime(sqlite_store, tmp_path)
    (asset_id,) = databases.assets(rt)
    key = server_key(asset_connection(server.port, databases.user), "mariadb")
    with server.connect() as admin, admin.cursor() as cur:
        cur.execute("SET GLOBAL max_connections = 10")  # MariaDB's least
    holders = [server.connect() for _ in range(10)]  # the server is full: dbmon's account gets no more
    try:
        with pytest.raises(DbmonError, match="Too many connections"):
            run_mysql_poll(rt, asset_id)
        row = backoff_of(sqlite_store, key)
        assert row.refusals == 1 and "Too many connections" in row.last_refusal
        assert row.backoff_until > utcnow() + timedelta(seconds=rt.settings.server_refusal_backoff - 5)
        for run in (run_mysql_poll, schema_check, probe_check):  # nobody connects while it is backed off
            with pytest.raises(BudgetExhausted, match="backing off"):
                run(rt, asset_id)
        (listed,) = [item for item in servers_api(rt, sqlite_store)["items"] if item["server"] == key]
        assert listed["backoff_until"] and listed["refusals"] == 1 and listed["held"] == 0

        end_backoff(sqlite_store, key)
        with pytest.raises(DbmonError, match="Too many connections"):
            schema_check(rt, asset_id)
        assert backoff_of(sqlite_store, key).refusals == 2
        end_backoff(sqlite_store, key)
        result = probe_check(rt, asset_id)
        assert result["status"] == "down" and "Too many connections" in result["error"]
        assert backoff_of(sqlite_store, key).refusals == 3
    finally:
        with server.connect() as admin, admin.cursor() as cur:  # root's one connection past the limit
            cur.execute("SET GLOBAL max_connections = 20")
        for holder in holders:
            holder.close()
    end_backoff(sqlite_store, key)
    assert run_mysql_poll(rt, asset_id)["asset_id"] == asset_id  # room again: polled as before
    rt.mysql_sessions.close()


@pytest.mark.slow
def test_an_account_past_its_max_user_connections_backs_the_server_off(small_server, sqlite_store, tmp_path):
    server, databases = small_server
    with server.connect() as admin, admin.cursor() as cur:
        cur.execute(f"ALTER USER '{databases.user}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 1")
    rt = make_runtime(sqlite_store, tmp_path)
    (asset_id,) = databases.assets(rt)
    key = server_key(asset_connection(server.port, databases.user), "mariadb")
    held = pymysql.connect(host="127.0.0.1", port=server.port, user=databases.user, password=databases.password)
    try:
        result = probe_check(rt, asset_id)
        assert result["status"] == "down" and "max_user_connections" in result["error"]
        assert backoff_of(sqlite_store, key).refusals == 1
        with pytest.raises(BudgetExhausted, match="backing off"):
            schema_check(rt, asset_id)
    finally:
        held.close()
        with server.connect() as admin, admin.cursor() as cur:
            cur.execute(f"ALTER USER '{databases.user}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 0")
