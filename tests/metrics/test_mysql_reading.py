"""What a MySQL or MariaDB poll makes of the rows a server sends, without a server: hostile
values, both generations of replica status, rates, restarts, statement digests."""

from __future__ import annotations

import pytest

from monitor_app.metrics import mysql_reading as r
from monitor_app.metrics.counter_rates import CounterPoll, interval
from monitor_app.metrics.mysql_digests import parse, rank, since


def reading(status: dict, variables: tuple = (151, 0, 0, "10.11.19-MariaDB", "Debian", 1000.0)) -> r.MysqlReading:
    out = r.MysqlReading()
    r.read_variables(variables, out)
    r.read_status(list(status.items()), out)
    return out


def test_values_that_are_not_numbers_are_skipped_with_a_note_and_short_rows_ignored():
    got = reading({"Threads_connected": "7", "Questions": "12abc", "Uptime": "nan", "Bytes_sent": b"\xff\xfe"})
    r.read_status([("Queries",), None, ("Slow_queries", None)], got)
    assert got.status == {"Threads_connected": 7.0}
    assert {n.split(":")[0] for n in got.notes} == {"status Questions", "status Uptime", "status Bytes_sent",
                                                    "status Slow_queries"}
    metrics = {m: v for m, v, _ in r.gauges(got, None)}
    assert metrics["mysql.connections"] == 7 and metrics["mysql.connections_used_ratio"] == pytest.approx(7 / 151)
    assert "mysql.uptime_seconds" not in metrics


def test_the_engine_comes_from_the_version_and_a_missing_variable_or_clock_is_no_crash():
    assert reading({}).flavor == "mariadb"
    mysql = reading({}, (100, 1, 1, "8.0.36", "MySQL Community Server - GPL", "1700000000.5"))
    assert mysql.flavor == "mysql" and mysql.server_now == 1700000000.5
    assert r.statements_state(mysql) is None  # performance_schema = 1
    short = reading({"Threads_connected": "3"}, ("many",))
    assert short.server_now is None and short.flavor == "mysql"
    assert {m for m, _, _ in r.gauges(short, None)} == {"mysql.connections"}
    assert r.statements_state(short).startswith("not available: performance_schema is OFF")


def test_connections_over_max_connections_read_as_full():
    got = reading({"Threads_connected": "152"})
    assert dict((m, v) for m, v, _ in r.gauges(got, None))["mysql.connections_used_ratio"] == 1.0


def test_deadlocks_come_from_innodb_metrics_of_either_engine_else_the_status_variable():
    got = reading({"Innodb_deadlocks": "4"})
    r.read_deadlocks([{"NAME": "lock_deadlocks", "COUNT": 9, "ENABLED": 1}], got)  # MariaDB's columns
    assert got.deadlocks == ("deadlocks@innodb_metrics", 9)
    got = reading({})
    r.read_deadlocks([{"NAME": "lock_deadlocks", "COUNT": "2", "STATUS": "enabled"}], got)  # MySQL's
    assert got.deadlocks == ("deadlocks@innodb_metrics", 2)
    got = reading({"Innodb_deadlocks": "4"})
    r.read_deadlocks([{"NAME": "lock_deadlocks", "COUNT": 0, "STATUS": "disabled"}], got)
    assert got.deadlocks == ("deadlocks@status", 4)
    got = reading({})
    r.read_deadlocks([], got)
    assert got.deadlocks is None and "lock_deadlocks counter is disabled" in got.notes[0]


def test_a_change_of_deadlock_source_drops_that_counter_not_the_others():
    before = CounterPoll(0, 1, 1, {"deadlocks@status": 50, "questions": 10})
    after = CounterPoll(10, 1, 1, {"deadlocks@innodb_metrics": 3, "questions": 30})
    span, _ = interval(before, after)
    metrics = dict(r.derived(span))
    assert metrics["mysql.questions_per_second"] == 2 and "mysql.deadlocks_in_interval" not in metrics


def test_rates_and_ratios_of_an_interval():
    d = {"questions": 100, "queries": 120, "handler_commit": 40, "handler_rollback": 10, "com_commit": 5,
         "innodb_buffer_pool_read_requests": 1000, "innodb_buffer_pool_reads": 50, "created_tmp_tables": 8,
         "created_tmp_disk_tables": 2, "innodb_row_lock_waits": 4, "innodb_row_lock_time": 2000,
         "connection_errors_accept": 1, "connection_errors_max_connections": 3, "deadlocks@innodb_metrics": 2,
         "slow_queries": 1, "bytes_sent": 1000}
    span, _ = interval(CounterPoll(0, 1, 1, {k: 0 for k in d}), CounterPoll(10, 1, 1, d))
    m = dict(r.derived(span))
    assert m["mysql.questions_per_second"] == 10 and m["mysql.queries_per_second"] == 12
    assert m["mysql.transactions_per_second"] == 5 and m["mysql.commits_per_second"] == 0.5
    assert m["mysql.buffer_pool_hit_ratio"] == pytest.approx(0.95)
    assert m["mysql.tmp_disk_tables_ratio"] == 0.25 and m["mysql.tmp_disk_tables_in_interval"] == 2
    assert m["mysql.row_lock_wait_mean_ms"] == 500 and m["mysql.row_lock_wait_seconds_per_second"] == 0.2
    assert m["mysql.connection_errors_in_interval"] == 4 and m["mysql.deadlocks_in_interval"] == 2
    assert m["mysql.slow_queries_per_second"] == 0.1 and m["mysql.bytes_sent_per_second"] == 100


def test_an_idle_interval_has_no_hit_ratio_nor_tmp_ratio_and_a_read_ahead_burst_stays_within_0_and_1():
    idle, _ = interval(CounterPoll(0, 1, 1, {"innodb_buffer_pool_read_requests": 5, "innodb_buffer_pool_reads": 5,
                                             "created_tmp_tables": 1, "created_tmp_disk_tables": 0}),
                       CounterPoll(10, 1, 1, {"innodb_buffer_pool_read_requests": 5, "innodb_buffer_pool_reads": 5,
                                              "created_tmp_tables": 1, "created_tmp_disk_tables": 0}))
    assert {"mysql.buffer_pool_hit_ratio", "mysql.tmp_disk_tables_ratio"}.isdisjoint(dict(r.derived(idle)))
    burst, _ = interval(CounterPoll(0, 1, 1, {"innodb_buffer_pool_read_requests": 0, "innodb_buffer_pool_reads": 0}),
                        CounterPoll(10, 1, 1, {"innodb_buffer_pool_read_requests": 10, "innodb_buffer_pool_reads": 30}))
    assert dict(r.derived(burst))["mysql.buffer_pool_hit_ratio"] == 0.0


def test_a_server_life_is_stable_within_the_slack_and_moves_with_a_restart():
    first = r.life(None, 10_000.4, 4000)
    assert first == 6000.4
    assert r.life(first, 10_010.9, 4010) == first  # a second off from rounding Uptime: the same life
    restarted = r.life(first, 10_020.0, 3)
    assert restarted == 10_017.0
    assert r.life(first, None, 4000) is None and r.life(first, 10_000, None) is None and r.life(None, 1, -5) is None
    before = CounterPoll(10_000.4, first, first, {"questions": 900})
    _, why = interval(before, CounterPoll(10_020.0, restarted, restarted, {"questions": 4}))
    assert why == "server restarted"


MARIADB_ROW = {"Connection_name": "", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "No",
               "Seconds_Behind_Master": None, "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 1062,
               "Last_SQL_Error": "Could not execute Write_rows_v1 event on table app.t; Duplicate entry '100'",
               "Last_Error": "Could not execute Write_rows_v1 event on table app.t; Duplicate entry '100'"}
MYSQL_ROWS = [{"Channel_Name": "", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes",
               "Seconds_Behind_Source": 12, "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 0,
               "Last_SQL_Error": ""},
              {"Channel_Name": "from_eu\n<x>", "Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes",
               "Seconds_Behind_Source": None, "Last_IO_Errno": 2003,
               "Last_IO_Error": b"error connecting to source \xff" + b"x" * 2000, "Last_SQL_Errno": "0",
               "Last_SQL_Error": None}]


def test_replica_status_rows_of_mariadb_and_of_mysql_8():
    [maria] = r.channels([MARIADB_ROW])
    assert maria == r.Channel("default", True, False, None, 0, 1062, "SQL: " + MARIADB_ROW["Last_SQL_Error"])
    first, second = r.channels(MYSQL_ROWS)
    assert (first.name, first.io_running, first.sql_running, first.lag, first.error) == ("default", True, True, 12, "")
    assert second.name == "from_eu__x_" and not second.io_running and second.lag is None
    assert second.error.startswith("IO: error connecting to source \ufffd") and len(second.error) <= r.ERROR_CHARS
    gauges = {(m, tuple(sorted(labels.items()))): v for m, v, labels in r.replication_gauges([maria, first, second])}
    assert gauges[("mysql.replication_channels", ())] == 3
    default = (("channel", "default"),)
    assert gauges[("mysql.replication_sql_running", default)] in (0.0, 1.0)
    assert gauges[("mysql.replication_io_errno", (("channel", "from_eu__x_"),))] == 2003
    assert ("mysql.replication_lag_seconds", (("channel", "from_eu__x_"),)) not in gauges  # NULL: not running
    assert r.replication_gauges([]) == [("mysql.replication_channels", 0.0, {})]


def test_a_replica_row_of_garbage_is_read_as_not_running():
    [c] = r.channels([{"Slave_IO_Running": 1, "Seconds_Behind_Master": "-3", "Last_SQL_Errno": "x"}])
    assert c == r.Channel("default", False, False, None, None, None, "")


T = 1_700_000_000.0  # a server clock: reads ask for digests seen since a Unix time


def digest_row(digest: str, calls: int, ps: float, *, first_seen: float = T - 900, schema="app", text="SELECT ?"):
    return (schema, digest, text, calls, ps, calls * 2, calls * 10, first_seen)


def test_digests_are_ranked_by_time_in_the_interval_not_since_start():
    first_rows = [digest_row("a" * 32, 1000, 9e15), digest_row("b" * 32, 10, 1e12)]
    _, state, status = rank(parse(first_rows), None, T, 5.0, top=1, tracked=50)
    assert status == "first read: the baseline" and since(state) == T - 1
    # `a` was heavy long ago and idle since; `b` took 4 s in the last 10 s; `c` is new in the interval.
    later = [digest_row("a" * 32, 1001, 9e15 + 1e9), digest_row("b" * 32, 30, 5e12),
             digest_row("c" * 64, 5, 2e12, first_seen=T + 1, schema=None, text="UPDATE t\n SET x = ?")]
    samples, state, status = rank(parse(later), state, T + 10, 5.0, top=2, tracked=50)
    by = {(m, labels["digest"]): v for m, v, labels in samples}
    assert status == "read: 2 statements ranked of 3 read"
    assert set(d for _, d in by) == {"b" * 32, "c" * 32}
    assert by[("mysql.statement_exec_seconds_per_second", "b" * 32)] == pytest.approx(0.4)
    assert by[("mysql.statement_calls_per_second", "b" * 32)] == pytest.approx(2.0)
    assert by[("mysql.statement_mean_ms", "b" * 32)] == pytest.approx(200.0)
    assert by[("mysql.statement_rows_examined_per_second", "c" * 32)] == pytest.approx(5.0)
    assert {labels["query"] for _, _, labels in samples if labels["digest"] == "c" * 32} == {"UPDATE t SET x _ _"}  # whitespace collapsed, unsafe characters replaced


def test_a_digest_older_than_the_last_read_and_not_kept_waits_a_read_and_truncation_or_restart_drops():
    _, state, _ = rank(parse([digest_row("a" * 32, 10, 1e12)]), None, T, 5.0, top=5, tracked=50)
    unknown = digest_row("d" * 32, 50, 5e12, first_seen=T - 100)
    samples, state, _ = rank(parse([unknown, digest_row("a" * 32, 4, 1e11)]), state, T + 10, 5.0, top=5, tracked=50)
    assert samples == []  # `d` has no baseline, `a` went back (truncated)
    samples, _, _ = rank(parse([digest_row("d" * 32, 60, 6e12, first_seen=T - 100)]), state, T + 20, 5.0, 5, 50)
    assert {labels["digest"] for _, _, labels in samples} == {"d" * 32}
    samples, _, status = rank(parse([digest_row("d" * 32, 70, 7e12)]), state, T + 30, 99.0, 5, 50)
    assert samples == [] and status.startswith("interval dropped")


def test_kept_digests_are_bounded_and_keep_the_most_recent_and_damaged_state_is_a_first_read():
    rows = [digest_row(f"{i:032d}", 10, 1e9) for i in range(8)]
    _, state, _ = rank(parse(rows), None, T, 1.0, 5, tracked=5)
    _, state, _ = rank(parse([digest_row("9" * 32, 1, 1)]), state, T + 10, 1.0, 5, tracked=5)
    assert len(state["digests"]) == 5 and "app/" + "9" * 32 in state["digests"]
    samples, _, status = rank(parse(rows), {"at": "garbage", "digests": [1, 2]}, T + 20, 1.0, 5, 5)
    assert samples == [] and status == "first read: the baseline"
    assert parse([("s", "d", "t", "many", 1, 1, 1, 1), ("s",), None]) == []
