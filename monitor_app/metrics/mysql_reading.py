"""What dbmon reads from a MySQL or MariaDB server, and how the rows become samples: pure
functions over what the server answered, so every rule here is tested without a server.

Statements are the ones both engines know: `SHOW GLOBAL STATUS` and a `SELECT @@…` of a few
variables (with the server's clock, so intervals and the server's start are measured on one
clock), `information_schema.INNODB_METRICS` for deadlocks, and the replica status. A status
variable or a value another version lacks, or sends as something not a number, is skipped with a
note; nothing here raises on what a server sends.

**Deadlocks.** MariaDB counts them in the status variable `Innodb_deadlocks`, MySQL does not;
both keep InnoDB's `lock_deadlocks` counter in `INNODB_METRICS` (enabled by default). That one is
read on both, so the path MySQL takes is the one tested on MariaDB; `Innodb_deadlocks` serves
when `INNODB_METRICS` cannot be read (it needs the PROCESS privilege) or the counter is disabled.
Each source is its own counter, so a switch between them drops that interval instead of
subtracting one from the other.

**A server's life.** Counters restart with the server and `FLUSH STATUS` resets some; the life
of a counter is the server's start (its clock less `Uptime`) and the last flush (less
`Uptime_since_flush_status`). Both are seconds-granular, so a start within `LIFE_SLACK` of the
previous poll's is the same start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from monitor_app.metrics.counter_rates import Interval, ratio
from monitor_app.metrics.pg_reading import MAX_ROWS, finite, label

GAUGES = {"Threads_connected": "mysql.connections", "Threads_running": "mysql.threads_running",
          "Max_used_connections": "mysql.max_used_connections",
          "Innodb_row_lock_current_waits": "mysql.row_lock_current_waits", "Uptime": "mysql.uptime_seconds"}
COUNTERS = ("Queries", "Questions", "Com_commit", "Com_rollback", "Handler_commit", "Handler_rollback",
            "Slow_queries", "Innodb_buffer_pool_reads", "Innodb_buffer_pool_read_requests", "Innodb_row_lock_waits",
            "Innodb_row_lock_time", "Innodb_deadlocks", "Created_tmp_tables", "Created_tmp_disk_tables",
            "Bytes_sent", "Bytes_received", "Aborted_connects", "Aborted_clients", "Connections", "Threads_created",
            "Connection_errors_accept", "Connection_errors_internal", "Connection_errors_max_connections",
            "Connection_errors_peer_address", "Connection_errors_select", "Connection_errors_tcpwrap")
LIFE = ("Uptime", "Uptime_since_flush_status")
STATUS_SQL = ("SHOW GLOBAL STATUS WHERE Variable_name IN ("
              + ", ".join(f"'{name}'" for name in (*GAUGES, *COUNTERS, LIFE[1])) + ")")
VARIABLES = ("max_connections", "performance_schema", "read_only", "version", "version_comment")
VARIABLES_SQL = "SELECT " + ", ".join(f"@@{name}" for name in VARIABLES) + ", UNIX_TIMESTAMP(NOW(6))"
# Whether the counter runs: MariaDB says so in ENABLED, MySQL in STATUS. Two columns, not the
# seventeen: a poll's client CPU goes mostly to column descriptions.
DEADLOCKS_SQL = {flavor: f"SELECT COUNT, {column} FROM information_schema.INNODB_METRICS WHERE NAME = 'lock_deadlocks'"  # nosec B608 - a column name from the tuple below
                 for flavor, column in (("mariadb", "ENABLED"), ("mysql", "STATUS"))}
# MariaDB's ALL form lists every source of multi-source replication, each a row with its Connection_name.
REPLICATION_SQL = {"mariadb": ("SHOW ALL REPLICAS STATUS", "SHOW ALL SLAVES STATUS"),
                   "mysql": ("SHOW REPLICA STATUS", "SHOW SLAVE STATUS")}
LIFE_SLACK = 5.0
ERROR_CHARS = 500

PER_SECOND = {"queries": "queries", "questions": "questions", "com_commit": "commits", "com_rollback": "rollbacks",
              "slow_queries": "slow_queries", "bytes_sent": "bytes_sent", "bytes_received": "bytes_received",
              "aborted_connects": "aborted_connects", "aborted_clients": "aborted_clients",
              "connections": "connection_attempts", "threads_created": "threads_created",
              "created_tmp_tables": "tmp_tables", "created_tmp_disk_tables": "tmp_disk_tables",
              "innodb_row_lock_waits": "row_lock_waits", "innodb_buffer_pool_reads": "buffer_pool_reads",
              "innodb_buffer_pool_read_requests": "buffer_pool_read_requests"}
IN_INTERVAL = {"slow_queries": "slow_queries", "aborted_connects": "aborted_connects",
               "aborted_clients": "aborted_clients", "innodb_row_lock_waits": "row_lock_waits",
               "created_tmp_disk_tables": "tmp_disk_tables"}
DEADLOCK_SOURCES = ("deadlocks@innodb_metrics", "deadlocks@status")


@dataclass
class MysqlReading:
    """One poll's answers, as read; `problems` are parts the server refused or timed out (the
    collector reports them), `notes` what was skipped as expected on this server."""

    flavor: str = "mysql"
    status: dict[str, float] = field(default_factory=dict)
    variables: dict[str, object] = field(default_factory=dict)
    server_now: float | None = None
    deadlocks: tuple[str, float] | None = None
    replication: list[dict] | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_status(rows, reading: MysqlReading) -> None:
    """`SHOW GLOBAL STATUS` rows (name, value): numbers kept, anything else skipped with a note."""
    for row in list(rows or ())[:MAX_ROWS]:
        if not isinstance(row, (tuple, list)) or len(row) < 2:
            continue
        name, value = _text(row[0], 64), finite(_text(row[1], 64))
        if value is None:
            reading.notes.append(f"status {name}: not a number")
        else:
            reading.status[name] = value


def read_variables(row, reading: MysqlReading) -> None:
    values = list(row or ())
    reading.variables = {name: values[i] for i, name in enumerate(VARIABLES) if i < len(values)}
    reading.server_now = finite(values[len(VARIABLES)]) if len(values) > len(VARIABLES) else None
    version = _text(reading.variables.get("version"), 100)
    reading.flavor = "mariadb" if "mariadb" in version.lower() else "mysql"


def read_deadlocks(rows: list[dict], reading: MysqlReading) -> None:
    """The `lock_deadlocks` row of INNODB_METRICS when its counter runs, else MariaDB's status variable."""
    for row in rows[:1]:
        enabled = str(row.get("ENABLED", row.get("STATUS", ""))).lower() in ("1", "enabled")
        count = finite(row.get("COUNT"))
        if enabled and count is not None:
            reading.deadlocks = ("deadlocks@innodb_metrics", count)
            return
    if "Innodb_deadlocks" in reading.status:
        reading.deadlocks = ("deadlocks@status", reading.status["Innodb_deadlocks"])
    else:
        reading.notes.append("deadlocks: the lock_deadlocks counter is disabled "
                             "(SET GLOBAL innodb_monitor_enable = 'lock_deadlocks')")


def statements_state(reading: MysqlReading) -> str | None:
    """None when performance_schema is on, else why statements are not available."""
    value = reading.variables.get("performance_schema")
    if str(value).lower() in ("1", "on"):
        return None
    return "not available: performance_schema is OFF (it can only be turned on at server start)"


def life(previous: float | None, now: float | None, elapsed: float | None) -> float | None:
    """When a counter's life began (now less its age), the previous poll's within LIFE_SLACK."""
    if now is None or elapsed is None or elapsed < 0:
        return None
    began = round(now - elapsed, 3)
    return previous if previous is not None and abs(previous - began) <= LIFE_SLACK else began


def counters(reading: MysqlReading) -> dict[str, float]:
    out = {name.lower(): reading.status[name] for name in COUNTERS if name in reading.status}
    if reading.deadlocks is not None:
        source, count = reading.deadlocks
        out[source] = count
    return out


def gauges(reading: MysqlReading, started: float | None) -> list[tuple[str, float, dict]]:
    status = reading.status
    out: list[tuple[str, float, dict]] = [(metric, status[name], {}) for name, metric in GAUGES.items()
                                          if name in status]
    max_connections = finite(reading.variables.get("max_connections"))
    if max_connections is not None:
        out.append(("mysql.max_connections", max_connections, {}))
        used = ratio(status.get("Threads_connected", -1), max_connections)
        if used is not None and used >= 0:
            # One connection over max_connections is reserved for an administrator: still "full".
            out.append(("mysql.connections_used_ratio", min(1.0, used), {}))
    read_only = finite(reading.variables.get("read_only"))
    if read_only is not None:
        out.append(("mysql.read_only", 1.0 if read_only else 0.0, {}))
    if started is not None:
        out.append(("mysql.start_time_seconds", started, {}))
    if reading.deadlocks is not None:
        out.append(("mysql.deadlocks", reading.deadlocks[1], {}))
    out += [(f"mysql.status.{name}", value, {}) for name, value in counters(reading).items()
            if not name.startswith("deadlocks@")]
    return out


def derived(span: Interval) -> list[tuple[str, float]]:
    """Rates and ratios of one interval (none of them negative: `counter_rates` saw to that)."""
    d, seconds = span.deltas, span.seconds
    out = [(f"mysql.{metric}_per_second", d[name] / seconds) for name, metric in PER_SECOND.items() if name in d]
    out += [(f"mysql.{metric}_in_interval", d[name]) for name, metric in IN_INTERVAL.items() if name in d]
    errors = [value for name, value in d.items() if name.startswith("connection_errors_")]
    if errors:
        out += [("mysql.connection_errors_per_second", sum(errors) / seconds),
                ("mysql.connection_errors_in_interval", sum(errors))]
    if "handler_commit" in d and "handler_rollback" in d:
        out.append(("mysql.transactions_per_second", (d["handler_commit"] + d["handler_rollback"]) / seconds))
    deadlocks = next((d[source] for source in DEADLOCK_SOURCES if source in d), None)
    if deadlocks is not None:
        out += [("mysql.deadlocks_per_second", deadlocks / seconds), ("mysql.deadlocks_in_interval", deadlocks)]
    requests = d.get("innodb_buffer_pool_read_requests", 0.0)
    if requests > 0 and "innodb_buffer_pool_reads" in d:  # no page asked for: no ratio rather than a made-up 1
        out.append(("mysql.buffer_pool_hit_ratio", _unit(1 - d["innodb_buffer_pool_reads"] / requests)))
    tmp_tables = d.get("created_tmp_tables", 0.0)
    if tmp_tables > 0 and "created_tmp_disk_tables" in d:
        out.append(("mysql.tmp_disk_tables_ratio", _unit(d["created_tmp_disk_tables"] / tmp_tables)))
    if "innodb_row_lock_time" in d:  # milliseconds waited per second: the average number of waiting sessions
        out.append(("mysql.row_lock_wait_seconds_per_second", d["innodb_row_lock_time"] / 1000 / seconds))
        waits = d.get("innodb_row_lock_waits", 0.0)
        if waits > 0:
            out.append(("mysql.row_lock_wait_mean_ms", d["innodb_row_lock_time"] / waits))
    return out


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class Channel:
    """One replication source of a replica, as its status row says."""

    name: str
    io_running: bool
    sql_running: bool
    lag: float | None
    io_errno: float | None
    sql_errno: float | None
    error: str


def channels(rows: list[dict]) -> list[Channel]:
    """Rows of SHOW [ALL] REPLICA(S)/SLAVE(S) STATUS, column names of either generation."""
    out = []
    for row in rows[:MAX_ROWS]:
        io_error = _text(_col(row, "Last_IO_Error"), ERROR_CHARS)
        sql_error = _text(_col(row, "Last_SQL_Error", "Last_Error"), ERROR_CHARS)
        errors = [f"{kind}: {text}" for kind, text in (("IO", io_error), ("SQL", sql_error)) if text]
        lag = finite(_col(row, "Seconds_Behind_Source", "Seconds_Behind_Master"))
        name = _text(_col(row, "Channel_Name", "Channel_name", "Connection_name"), 64)
        out.append(Channel(name=label(name or "default"),
                           io_running=_yes(_col(row, "Replica_IO_Running", "Slave_IO_Running")),
                           sql_running=_yes(_col(row, "Replica_SQL_Running", "Slave_SQL_Running")),
                           lag=lag if lag is not None and lag >= 0 else None,
                           io_errno=finite(_col(row, "Last_IO_Errno")), sql_errno=finite(_col(row, "Last_SQL_Errno")),
                           error="; ".join(errors)[:ERROR_CHARS]))
    return out


def replication_gauges(found: list[Channel]) -> list[tuple[str, float, dict]]:
    out: list[tuple[str, float, dict]] = [("mysql.replication_channels", float(len(found)), {})]
    for c in found:
        labels = {"channel": c.name}
        out += [("mysql.replication_io_running", float(c.io_running), labels),
                ("mysql.replication_sql_running", float(c.sql_running), labels),
                ("mysql.replication_error", float(bool(c.error)), labels)]
        if c.lag is not None:  # NULL: the SQL thread is stopped or the IO thread is not connected
            out.append(("mysql.replication_lag_seconds", c.lag, labels))
        out += [(f"mysql.replication_{kind}_errno", value, labels)
                for kind, value in (("io", c.io_errno), ("sql", c.sql_errno)) if value is not None]
    return out


def _col(row: dict, *names: str):
    return next((row[n] for n in names if n in row), None)


def _yes(value) -> bool:
    return _text(value, 16).strip().lower() == "yes"


def _text(value, limit: int) -> str:
    """A value from the server as bounded text; bytes that are not UTF-8 are replaced, not raised on."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:limit * 4]).decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return str(value)[:limit]
