"""Connecting to MySQL and MariaDB without a server: TLS modes, failure reasons, and the
connection kept between polls (reused, replaced when stale, closed on errors) in its budget slot."""

from __future__ import annotations

import time

import pymysql
import pytest

from monitor_app.assets.connection_budget import ConnectionBudget, held_per_server
from monitor_app.errors import DbmonError
from monitor_app.metrics.mysql_connection import (KeptConnections, SessionLimits, connect, failure_reason, ssl_mode,
                                                  transport_connection)
from monitor_app.store.base import utcnow
from monitor_app.store.models.servers import MonitoredServer


def test_tls_modes_follow_the_transports_policy_and_ssl_stands_in_for_sslmode():
    assert ssl_mode({"host": "db"}) == "required"
    assert ssl_mode({"ssl": "disable"}) == "required"  # plaintext only when declared insecure
    assert ssl_mode({"ssl": "disable", "insecure": True}) == "disable"
    assert ssl_mode({"insecure": True}) == "preferred"
    assert ssl_mode({"ssl": "verify"}) == "verify_identity" and ssl_mode({"ssl": "verify-ca"}) == "verify_ca"
    assert ssl_mode({"ssl": "prefer", "ssl_ca": "/ca.pem"}) == "verify_identity"  # weak: raised, verified by the CA
    assert ssl_mode({"sslmode": "verify-full"}) == "verify_identity"  # PostgreSQL's names read as MySQL's
    assert ssl_mode({"ssl": "disable", "sslmode": "verify_ca"}) == "verify_ca"  # sslmode wins
    assert transport_connection({"ssl_ca": "/ca.pem", "ssl": "require"}) == {
        "ssl_ca": "/ca.pem", "ssl": "require", "sslmode": "required", "sslrootcert": "/ca.pem"}


def test_an_unreadable_ca_file_is_a_clear_error_before_any_connection():
    with pytest.raises(DbmonError, match="No such file"):
        connect({"host": "127.0.0.1", "port": 9, "user": "u", "ssl": "verify", "ssl_ca": "/nonexistent/ca.pem"},
                None, SessionLimits(1, 1, 1, 10))


def test_failure_reasons_name_their_kind_first():
    import pymysql

    assert failure_reason(pymysql.err.OperationalError(1045, "Access denied for user 'x'")).startswith(
        "missing privileges: Access denied")
    assert failure_reason(pymysql.err.OperationalError(2003, "Can't connect ([Errno 111] Connection refused)")
                          ).startswith("refused: ")
    assert failure_reason(pymysql.err.OperationalError(2013, "Lost connection to server during query (timed out)")
                          ).startswith("timeout: ")
    assert failure_reason(pymysql.err.OperationalError(1969, "Query execution was interrupted")).startswith("timeout")
    assert failure_reason(ValueError("bad\nsecond line")) == "error: bad"


class FakeConnection:
    def __init__(self, number: int):
        self.number, self.closed = number, False

    def close(self):
        self.closed = True


@pytest.fixture()
def budget(sqlite_store):
    """Servers whose limits were read (cap 50): the budget of 3 decides."""
    with sqlite_store.session() as s:
        for server in ("db:3306", "other:3306"):
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


def test_a_kept_connection_is_reused_for_the_same_server_and_identity_only(budget):
    kept, (made, connect) = KeptConnections(budget), opener()
    assert [kept.run("db:3306", "id", connect, lambda c: c.number, 25) for _ in range(3)] == [1, 1, 1]
    assert kept.run("db:3306", "new password", connect, lambda c: c.number, 25) == 2
    assert made[0].closed and not made[1].closed and kept.kept_servers() == ["db:3306"]
    assert kept.run("other:3306", "id", connect, lambda c: c.number, 25) == 3
    assert held(budget) == {"db:3306": 1, "other:3306": 1}  # a kept connection keeps its slot
    kept.close()
    assert all(c.closed for c in made) and kept.kept_servers() == [] and held(budget) == {}


def test_a_connection_is_kept_only_while_another_slot_of_its_server_is_free(budget):
    kept, (made, connect) = KeptConnections(budget), opener()
    other = [budget.try_acquire("db:3306", "schema check") for _ in range(2)]
    assert kept.run("db:3306", "id", connect, lambda c: c.number, 25) == 1
    assert made[0].closed and kept.kept_servers() == [] and held(budget) == {"db:3306": 2}
    budget.release(other[0])
    kept.run("db:3306", "id", connect, lambda c: c.number, 25)
    assert kept.kept_servers() == ["db:3306"] and held(budget) == {"db:3306": 2}


def test_an_idle_kept_connection_is_closed_and_its_slot_given_back(budget):
    kept, (made, connect) = KeptConnections(budget), opener()
    kept.run("db:3306", "id", connect, lambda c: c.number, 25)
    assert kept.reap(time.monotonic() + 10) == 0 and held(budget) == {"db:3306": 1}
    assert kept.reap(time.monotonic() + 26) == 1
    assert made[0].closed and kept.kept_servers() == [] and held(budget) == {}


def test_a_connection_idle_past_the_servers_wait_timeout_is_replaced(monkeypatch, budget):
    kept, (made, connect) = KeptConnections(budget), opener()
    clock = [1000.0]
    monkeypatch.setattr("monitor_app.metrics.mysql_connection.time.monotonic", lambda: clock[0])
    kept.run("db:3306", "id", connect, lambda c: c.number, 10)
    clock[0] += 8.5
    assert kept.run("db:3306", "id", connect, lambda c: c.number, 10) == 1
    clock[0] += 9.5  # within a second of wait_timeout: the server may have closed it
    assert kept.run("db:3306", "id", connect, lambda c: c.number, 10) == 2 and made[0].closed


def test_a_dead_kept_connection_is_replaced_once_and_any_other_failure_closes_it(budget):
    kept, (made, connect) = KeptConnections(budget), opener()
    kept.run("db:3306", "id", connect, lambda c: None, 25)

    def gone_on_first(c):
        if c.number == 1:
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
        return c.number

    assert kept.run("db:3306", "id", connect, gone_on_first, 25) == 2 and made[0].closed
    with pytest.raises(pymysql.err.OperationalError):
        kept.run("db:3306", "id", connect, lambda c: (_ for _ in ()).throw(
            pymysql.err.OperationalError(2013, "Lost connection")), 25)
    assert made[1].closed and made[2].closed  # retried once on a new connection, then given up
    with pytest.raises(ValueError):
        kept.run("db:3306", "id", connect, lambda c: int("x"), 25)
    assert made[3].closed and kept.kept_servers() == [] and kept.opened == 4 and held(budget) == {}
