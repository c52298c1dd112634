"""MySQL metrics that need a server of their own: statement digests (performance_schema on),
TLS with a certificate, and a replica of it. Two private MariaDB servers on free ports, started
once for the module and stopped by their pids whatever the outcome."""

from __future__ import annotations

from datetime import timedelta

import pymysql
import pytest
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.metrics.mysql_connection import SessionLimits, connect
from monitor_app.metrics.mysql_tier import run_mysql_poll
from monitor_app.store.base import utcnow
from monitor_app.store.models import MetricSeries
from tests.harness import wait_for
from tests.metrics.mysql_servers import (PrivateMariaDB, add_mysql_asset, asset_connection, event_types,
                                         make_tls_files, values_at)
from tests.metrics.pg_fast_helpers import latest
from tests.schema.conftest import make_runtime

pytestmark = pytest.mark.slow
LIMITS = SessionLimits(5, 2, 0.5, 25)


def replica_status(replica) -> dict:
    with replica.connect(cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cur:
        cur.execute("SHOW REPLICA STATUS")
        return cur.fetchone() or {}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tls = make_tls_files(tmp_path_factory.mktemp("mysql-tls"))
    primary = PrivateMariaDB(performance_schema=True, server_id=1, log_bin=True, tls=tls)
    replica = PrivateMariaDB(performance_schema=False, server_id=2)
    try:
        primary.start()
        replica.start()
        with primary.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            cur.execute("INSERT INTO app.t SELECT seq, 0 FROM app.seq_1_to_50")
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {primary.port}, "
                        "MASTER_USER = 'root', MASTER_PASSWORD = '', MASTER_CONNECT_RETRY = 1")
            cur.execute("START REPLICA")
        wait_for(lambda: replica_status(replica).get("Seconds_Behind_Master") == 0, 30, 0.1,
                 what="the replica caught up")
        yield primary, replica, tls
    finally:
        replica.stop()
        primary.stop()


def test_statement_digests_are_ranked_by_their_time_in_the_interval(servers, sqlite_store, tmp_path):
    primary, _, _ = servers
    rt = make_runtime(sqlite_store, tmp_path, {"metrics": {"statements_top": 3}})
    asset_id = add_mysql_asset(rt, asset_connection(primary.port, "root", "app"))
    t0 = utcnow()
    try:
        first = run_mysql_poll(rt, asset_id, now=t0)
        assert first["statements"] == "first read: the baseline"
        with primary.connect(database="app") as conn, conn.cursor() as cur:
            for _ in range(10):
                cur.execute("SELECT SLEEP(0.03)")
            for i in range(40):
                cur.execute("SELECT v FROM t WHERE id = %s", (i + 1,))
            cur.execute("SELECT COUNT(*) FROM performance_schema.session_connect_attrs "
                        "WHERE ATTR_NAME = 'program_name' AND ATTR_VALUE = 'dbmon'")
            assert cur.fetchone()[0] == 1  # the kept connection names itself
        assert run_mysql_poll(rt, asset_id, now=t0 + timedelta(seconds=10))["statements"] == "not due"
        ranked = run_mysql_poll(rt, asset_id, now=t0 + timedelta(seconds=61))
    finally:
        rt.mysql_sessions.close()
    assert ranked["statements"].startswith("read: ") and ranked["problems"] == []
    with sqlite_store.session() as s:
        series = {(x.name, x.labels["query"]): x.last_value for x in s.scalars(
            select(MetricSeries).where(MetricSeries.asset_id == asset_id, MetricSeries.name.like("mysql.statement_%")))
            if "query" in x.labels}
    queries = {q for _, q in series}
    assert 1 <= len(queries) <= 3 and not [q for q in queries if q.upper().startswith(("SHOW", "SET"))]
    [sleep] = [q for q in queries if "SLEEP" in q.upper()]
    assert series[("mysql.statement_mean_ms", sleep)] >= 30
    assert series[("mysql.statement_calls_per_second", sleep)] > 0
    assert series[("mysql.statement_exec_seconds_per_second", sleep)] > 0
    lookups = [q for q in queries if "FROM" in q.upper() and "t" in q]
    if lookups:  # ranked after SLEEP when it fits in the top 3
        assert series[("mysql.statement_rows_examined_per_second", lookups[0])] > 0
    assert latest(sqlite_store, asset_id, "mysql.statements_available") == 1


def test_tls_modes_against_a_server_with_a_certificate(servers):
    primary, _, tls = servers
    base = {**asset_connection(primary.port, "root", "app"), "insecure": False}
    for extra in ({"ssl": "require"}, {"ssl": "disable"},  # raised to require
                  {"ssl": "verify", "ssl_ca": str(tls["ca"])},
                  {"ssl": "verify-ca", "ssl_ca": str(tls["ca"]), "host": "localhost"}):
        conn = connect({**base, **extra}, None, LIMITS)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cur.fetchone()[1].startswith("TLS"), extra
        conn.close()
    for extra, reason in (({"ssl": "verify", "ssl_ca": str(tls["other_ca"])}, "certificate verify failed"),
                          ({"ssl": "verify", "ssl_ca": str(tls["ca"]), "host": "localhost"}, "mismatch"),
                          ({"ssl": "verify"}, "certificate verify failed")):  # the system's CAs never signed it
        with pytest.raises(DbmonError, match=reason):
            connect({**base, **extra}, None, LIMITS)


def test_a_replica_reports_lag_threads_and_its_last_error_as_events_on_change(servers, sqlite_store, tmp_path):
    primary, replica, _ = servers
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_mysql_asset(rt, asset_connection(replica.port, "root", "app"), name="replica")
    default = {"channel": "default"}
    try:
        result = run_mysql_poll(rt, asset_id)
        assert result["replication"] == "1 channels" and result["problems"] == []
        assert latest(sqlite_store, asset_id, "mysql.replication_channels") == 1
        assert latest(sqlite_store, asset_id, "mysql.replication_io_running", **default) == 1
        assert latest(sqlite_store, asset_id, "mysql.replication_sql_running", **default) == 1
        assert 0 <= latest(sqlite_store, asset_id, "mysql.replication_lag_seconds", **default) < 5
        assert latest(sqlite_store, asset_id, "mysql.replication_error", **default) == 0

        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO app.t VALUES (100, 1)")  # a row the primary is about to write too
        with primary.connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO app.t VALUES (100, 2)")
        wait_for(lambda: replica_status(replica).get("Slave_SQL_Running") == "No", 30, 0.1,
                 what="the replica's SQL thread stopping on the duplicate")
        broken_at = utcnow()
        run_mysql_poll(rt, asset_id, now=broken_at)
        run_mysql_poll(rt, asset_id)
        broken = values_at(sqlite_store, asset_id, broken_at)
        assert broken["mysql.replication_sql_running"] == 0 and broken["mysql.replication_error"] == 1
        assert broken["mysql.replication_sql_errno"] == 1062
        assert "mysql.replication_lag_seconds" not in broken  # NULL while the SQL thread is stopped
        assert event_types(sqlite_store, "mysql.replication") == ["mysql.replication_error"]

        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM app.t WHERE id = 100")
            cur.execute("START REPLICA SQL_THREAD")
        wait_for(lambda: replica_status(replica).get("Slave_SQL_Running") == "Yes"
                 and not replica_status(replica).get("Last_SQL_Error"), 30, 0.1, what="the replica running again")
        run_mysql_poll(rt, asset_id)
        assert latest(sqlite_store, asset_id, "mysql.replication_error", **default) == 0
        assert event_types(sqlite_store, "mysql.replication") == ["mysql.replication_error",
                                                                   "mysql.replication_error_cleared"]

        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("STOP REPLICA IO_THREAD")
        wait_for(lambda: replica_status(replica).get("Slave_IO_Running") == "No", 30, 0.1, what="IO thread stopped")
        stopped_at = utcnow()
        run_mysql_poll(rt, asset_id, now=stopped_at)
        stopped = values_at(sqlite_store, asset_id, stopped_at)
        assert stopped["mysql.replication_io_running"] == 0 and stopped["mysql.replication_sql_running"] == 1
        assert "mysql.replication_lag_seconds" not in stopped
    finally:
        rt.mysql_sessions.close()
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("START REPLICA")
