"""MySQL metrics polled from the shared MariaDB (127.0.0.1:3306, performance_schema off) through
a throwaway database and account: gauges, rates of two polls, restarts, deadlocks, row lock
waits, temporary tables on disk, missing privileges, failures and the kept connection."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pymysql
import pytest

from monitor_app.errors import DbmonError
from monitor_app.metrics.mysql_connection import SessionLimits, connect, failure_reason
from monitor_app.metrics.mysql_tier import POLLS, due_assets, run_mysql_poll
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, CollectorHealth, MetricPollState
from tests.metrics.mysql_servers import Account, add_mysql_asset, admin_connect, event_types, values_at
from tests.metrics.pg_fast_helpers import latest
from tests.schema.conftest import make_runtime
from tests.services import free_port


@pytest.fixture(scope="module")
def account():
    admin_connect().close()  # skips (fails in CI) when the server is not there
    made = Account()
    conn = made.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE locks (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO locks VALUES (1, 0), (2, 0), (3, 0)")
    conn.close()
    yield made
    made.drop()


@pytest.fixture()
def polled(sqlite_store, tmp_path, account):
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_mysql_asset(rt, account.connection(), account.password)
    yield rt, asset_id
    rt.mysql_sessions.close()


def status(name: str, kind: str = "STATUS") -> float:
    admin = admin_connect()
    with admin.cursor() as cur:
        cur.execute(f"SHOW GLOBAL {kind} LIKE %s", (name,))
        value = float(cur.fetchone()[1])
    admin.close()
    return value


def test_a_poll_stores_the_server_gauges_on_either_store(store, tmp_path, account):
    rt = make_runtime(store, tmp_path)
    asset_id = add_mysql_asset(rt, account.connection(), account.password)
    try:
        result = run_mysql_poll(rt, asset_id)
        second = run_mysql_poll(rt, asset_id)
    finally:
        rt.mysql_sessions.close()
    assert result["engine"] == "mariadb" and result["rates"] == "first poll" and result["problems"] == []
    assert result["statements"].startswith("not available: performance_schema is OFF")
    assert result["replication"] == "not a replica" and second["rates"] == "interval"
    value = lambda name: latest(store, asset_id, name)  # noqa: E731
    assert value("mysql.connections") >= 1 and value("mysql.threads_running") >= 1
    assert value("mysql.max_connections") == status("max_connections", "VARIABLES")
    assert 0 < value("mysql.connections_used_ratio") <= 1
    assert value("mysql.uptime_seconds") > 0 and value("mysql.replication_channels") == 0
    assert abs(value("mysql.start_time_seconds") + value("mysql.uptime_seconds") - time.time()) < 60
    assert value("mysql.statements_available") == 0 and value("mysql.read_only") == 0
    assert value("mysql.deadlocks") is not None and value("mysql.status.questions") > 0
    hit_ratio = value("mysql.buffer_pool_hit_ratio")
    assert hit_ratio is None or 0 <= hit_ratio <= 1  # absent for an interval that asked for no page


def test_rates_come_from_two_polls(polled, account):
    rt, asset_id = polled
    first_at = utcnow()
    run_mysql_poll(rt, asset_id, now=first_at)
    questions = latest(rt.store, asset_id, "mysql.status.questions")
    client = account.connect()
    with client.cursor() as cur:
        for i in range(30):
            cur.execute("SELECT v FROM locks WHERE id = %s", (i % 3 + 1,))
        cur.execute("BEGIN")
        cur.execute("UPDATE locks SET v = v + 1 WHERE id = 1")
        cur.execute("COMMIT")
    client.close()
    result = run_mysql_poll(rt, asset_id, now=first_at + timedelta(seconds=10))
    assert result["rates"] == "interval"
    later = values_at(rt.store, asset_id, first_at + timedelta(seconds=10))
    assert later["mysql.status.questions"] - questions >= 33
    assert 0 < later["mysql.questions_per_second"] <= later["mysql.queries_per_second"]
    assert later["mysql.commits_per_second"] > 0 and later["mysql.transactions_per_second"] > 0
    assert later["mysql.bytes_received_per_second"] > 0 and later["mysql.bytes_sent_per_second"] > 0
    assert all(v >= 0 for k, v in later.items() if k.endswith(("_per_second", "_in_interval", "_ratio")))
    if "mysql.buffer_pool_hit_ratio" in later:
        assert 0 <= later["mysql.buffer_pool_hit_ratio"] <= 1


def _edit_kept_poll(store, asset_id: int, change) -> None:
    with store.session() as s:
        row = s.get(MetricPollState, (asset_id, POLLS.tier))
        poll = dict(row.counters["poll"])
        change(poll)
        row.counters = {**row.counters, "poll": poll}


def test_a_restart_or_counters_that_went_back_give_no_rates_and_the_next_poll_counts_again(polled):
    rt, asset_id = polled
    t0 = utcnow()
    run_mysql_poll(rt, asset_id, now=t0)

    def longer_uptime(poll):  # the previous poll saw a server up for much longer: it restarted since
        poll["started"] -= 1000
        poll["counters"] = {k: v * 10 + 1e6 for k, v in poll["counters"].items()}

    _edit_kept_poll(rt.store, asset_id, longer_uptime)
    assert run_mysql_poll(rt, asset_id, now=t0 + timedelta(seconds=10))["rates"] == "server restarted"
    _edit_kept_poll(rt.store, asset_id, lambda p: p.update(counters={k: v + 1e6 for k, v in p["counters"].items()}))
    assert run_mysql_poll(rt, asset_id, now=t0 + timedelta(seconds=20))["rates"] == "counters went back"
    for at in (t0 + timedelta(seconds=10), t0 + timedelta(seconds=20)):
        stored = values_at(rt.store, asset_id, at)
        assert "mysql.connections" in stored
        assert not [k for k in stored if k.endswith(("_per_second", "_in_interval", "_ratio"))
                    and k != "mysql.connections_used_ratio"]
    assert run_mysql_poll(rt, asset_id, now=t0 + timedelta(seconds=30))["rates"] == "interval"
    assert values_at(rt.store, asset_id, t0 + timedelta(seconds=30))["mysql.questions_per_second"] >= 0


def test_a_deadlock_between_two_connections_is_counted(polled, account):
    rt, asset_id = polled
    run_mysql_poll(rt, asset_id)
    before = latest(rt.store, asset_id, "mysql.deadlocks")
    a, b = account.connect(), account.connect()
    outcome: dict = {}
    try:
        a.begin()
        b.begin()
        a.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 1")
        b.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 2")

        def crossing():
            try:
                a.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 2")
                outcome["a"] = "ok"
            except pymysql.err.OperationalError as exc:
                outcome["a"] = exc.args[0]

        thread = threading.Thread(target=crossing)
        thread.start()
        time.sleep(0.3)  # a now waits for b's row
        try:
            b.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 1")
            outcome["b"] = "ok"
        except pymysql.err.OperationalError as exc:
            outcome["b"] = exc.args[0]
        thread.join(timeout=10)
    finally:
        a.rollback(), b.rollback(), a.close(), b.close()
    assert 1213 in outcome.values()  # InnoDB chose a victim
    run_mysql_poll(rt, asset_id)
    assert latest(rt.store, asset_id, "mysql.deadlocks") >= before + 1
    assert latest(rt.store, asset_id, "mysql.deadlocks_in_interval") >= 1
    assert latest(rt.store, asset_id, "mysql.deadlocks_per_second") > 0


def test_a_blocked_update_is_a_row_lock_wait_with_its_time(polled, account):
    rt, asset_id = polled
    run_mysql_poll(rt, asset_id)
    lock_time = latest(rt.store, asset_id, "mysql.status.innodb_row_lock_time")
    holder, waiter = account.connect(), account.connect()
    try:
        holder.begin()
        holder.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 3")
        thread = threading.Thread(target=lambda: waiter.cursor().execute("UPDATE locks SET v = v + 1 WHERE id = 3"))
        thread.start()
        deadline = time.monotonic() + 10
        while status("Innodb_row_lock_current_waits") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        run_mysql_poll(rt, asset_id)
        assert latest(rt.store, asset_id, "mysql.row_lock_current_waits") >= 1
        assert latest(rt.store, asset_id, "mysql.row_lock_waits_in_interval") >= 1
        time.sleep(0.4)
    finally:
        holder.rollback()
        thread.join(timeout=10)
        holder.close(), waiter.close()
    run_mysql_poll(rt, asset_id)
    assert latest(rt.store, asset_id, "mysql.status.innodb_row_lock_time") - lock_time >= 400
    assert latest(rt.store, asset_id, "mysql.row_lock_wait_seconds_per_second") > 0


def test_a_query_that_needs_a_temporary_table_on_disk_is_counted(polled, account):
    rt, asset_id = polled
    run_mysql_poll(rt, asset_id)
    client = account.connect()
    with client.cursor() as cur:
        cur.execute("SET SESSION max_heap_table_size = 16384, tmp_table_size = 16384")
        cur.execute("SELECT seq % 1000, REPEAT('x', 200), COUNT(*) FROM seq_1_to_5000 GROUP BY 1, 2")
        assert len(cur.fetchall()) == 1000
    client.close()
    run_mysql_poll(rt, asset_id)
    assert latest(rt.store, asset_id, "mysql.tmp_disk_tables_in_interval") >= 1
    assert 0 < latest(rt.store, asset_id, "mysql.tmp_disk_tables_ratio") <= 1
    assert latest(rt.store, asset_id, "mysql.tmp_disk_tables_per_second") > 0


def test_a_role_without_monitoring_privileges_loses_those_parts_only(sqlite_store, tmp_path):
    bare = Account(grants=())
    rt = make_runtime(sqlite_store, tmp_path)
    try:
        asset_id = add_mysql_asset(rt, bare.connection(), bare.password)
        result = run_mysql_poll(rt, asset_id)
    finally:
        rt.mysql_sessions.close()
        bare.drop()
    [problem] = result["problems"]
    assert problem.startswith("replication: missing privileges: ") and "SLAVE MONITOR" in problem
    assert any(n.startswith("deadlocks: missing privileges") for n in result["notes"])
    assert latest(sqlite_store, asset_id, "mysql.deadlocks") is not None  # from Innodb_deadlocks instead
    assert latest(sqlite_store, asset_id, "mysql.connections") >= 1
    assert latest(sqlite_store, asset_id, "mysql.replication_channels") is None
    with sqlite_store.session() as s:
        assert s.get(CollectorHealth, ("metrics.mysql", f"asset:{asset_id}")).last_error.startswith("replication:")


def test_refused_logins_and_a_closed_port_are_reported_once_then_recovered(sqlite_store, tmp_path, account):
    rt = make_runtime(sqlite_store, tmp_path)
    wrong = add_mysql_asset(rt, account.connection(), "not-the-password", name="wrong")
    closed = add_mysql_asset(rt, {**account.connection(), "port": free_port()}, account.password, name="closed")
    for asset_id, kind in ((wrong, "missing privileges: Access denied"), (closed, "refused: ")):
        for _ in range(2):
            with pytest.raises(DbmonError) as failed:
                run_mysql_poll(rt, asset_id)
            assert failed.value.message.startswith(kind) and failed.value.permanent
    assert event_types(sqlite_store, "metrics.mysql.") == ["metrics.mysql.check_failed"] * 2
    assert rt.mysql_sessions.kept_servers() == []  # a failed poll keeps no connection
    with sqlite_store.session() as s:
        s.get(Asset, wrong).secret = rt.credentials.seal({"password": account.password})
    run_mysql_poll(rt, wrong)
    rt.mysql_sessions.close()
    assert event_types(sqlite_store, "metrics.mysql.")[-1] == "metrics.mysql.check_recovered"


def test_tls_is_required_unless_the_asset_is_declared_insecure(polled, account, sqlite_store):
    rt, _ = polled
    for connection in ({**account.connection(), "ssl": "require", "insecure": False},
                       {**account.connection(), "ssl": "disable", "insecure": False}):
        asset_id = add_mysql_asset(rt, connection, account.password, name=f"tls-{connection['ssl']}")
        with pytest.raises(DbmonError, match="SSL is required but the server doesn't support it"):
            run_mysql_poll(rt, asset_id)


def test_the_session_limits_its_statements_and_idles_out_on_the_server(account):
    conn = connect(account.connection(), account.password, SessionLimits(3, 0.25, 0.5, 25))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@max_statement_time, @@wait_timeout, @@lock_wait_timeout, @@autocommit")
            assert cur.fetchone() == (0.25, 25, 1, 1)
            with pytest.raises(pymysql.err.OperationalError) as stopped:
                cur.execute("SELECT SLEEP(3)")
        assert failure_reason(stopped.value).startswith("timeout: ")
    finally:
        conn.close()


def test_the_connection_is_kept_between_polls_and_replaced_once_when_killed(polled, account):
    rt, asset_id = polled
    run_mysql_poll(rt, asset_id)
    run_mysql_poll(rt, asset_id)
    kept = rt.mysql_sessions
    assert kept.opened == 1 and kept.kept_servers() == ["127.0.0.1:3306"]
    admin = admin_connect()
    with admin.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (account.name,))
        [(thread_id,)] = cur.fetchall()
        cur.execute(f"KILL CONNECTION {int(thread_id)}")
    admin.close()
    assert run_mysql_poll(rt, asset_id)["rates"] == "interval"
    assert kept.opened == 2


def test_assets_of_both_engines_fall_due_and_a_disabled_one_does_not(sqlite_store, tmp_path, account):
    rt = make_runtime(sqlite_store, tmp_path, {"metrics": {"assets": {"off": {"enabled": False}}}})
    maria = add_mysql_asset(rt, account.connection(), account.password, name="maria")
    mysql = add_mysql_asset(rt, account.connection(), account.password, name="mysql", engine="mysql")
    add_mysql_asset(rt, account.connection(), account.password, name="off")
    now = utcnow()
    assert sorted(due_assets(rt, now)) == sorted([maria, mysql])
    assert due_assets(rt, now) == []  # marked sent
