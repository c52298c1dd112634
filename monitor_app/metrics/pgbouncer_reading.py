"""What dbmon reads from a PgBouncer admin console (`SHOW POOLS`, `SHOW STATS`, `SHOW LISTS`).

The console speaks the simple query protocol only and knows no transactions, so each command is
sent on its own. Columns are found by name, not position (PgBouncer adds columns between
releases), and everything it answers is bounded like any monitored input: at most `MAX_ROWS`
pools and databases, labels cut to a safe set, numbers that are not finite dropped.

PgBouncer's own averages (`avg_*` of `SHOW STATS`, over its `stats_period`, 60 s by default) are
stored as they are: they need no counter state of dbmon's, and a PgBouncer restart cannot make
them negative.
"""

from __future__ import annotations

from monitor_app.metrics.pg_reading import MAX_ROWS, PgReading, finite, label

POOL_GAUGES = {"cl_active": "pgbouncer.clients_active", "cl_waiting": "pgbouncer.clients_waiting",
               "sv_active": "pgbouncer.servers_active", "sv_idle": "pgbouncer.servers_idle",
               "sv_used": "pgbouncer.servers_used", "sv_login": "pgbouncer.servers_login"}
# SHOW STATS averages: per second, and microseconds per query, transaction or wait.
STATS_RATES = {"avg_xact_count": "pgbouncer.transactions_per_second", "avg_query_count": "pgbouncer.queries_per_second",
               "avg_recv": "pgbouncer.received_bytes_per_second", "avg_sent": "pgbouncer.sent_bytes_per_second"}
STATS_TIMES = {"avg_xact_time": "pgbouncer.avg_transaction_ms", "avg_query_time": "pgbouncer.avg_query_ms",
               "avg_wait_time": "pgbouncer.avg_wait_ms"}
LISTS = ("databases", "users", "pools", "free_clients", "used_clients", "login_clients", "free_servers",
         "used_servers")


def _rows(cur, command: str) -> list[dict]:
    cur.execute(command)
    names = [str(d[0]) for d in (cur.description or ())]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchmany(MAX_ROWS)]


def read_pgbouncer(conn) -> PgReading:
    """One poll through an autocommit connection to the `pgbouncer` admin database."""
    reading = PgReading()
    with conn.cursor() as cur:
        _pools(_rows(cur, "SHOW POOLS"), reading)
        _stats(_rows(cur, "SHOW STATS"), reading)
        _lists(_rows(cur, "SHOW LISTS"), reading)
    return reading


def _pools(rows: list[dict], reading: PgReading) -> None:
    waiting, longest_wait = 0.0, 0.0
    for row in rows:
        labels = {"database": label(row.get("database")), "user": label(row.get("user"))}
        for column, metric in POOL_GAUGES.items():
            reading.gauge(metric, row.get(column), labels)
        wait = (finite(row.get("maxwait")) or 0.0) + (finite(row.get("maxwait_us")) or 0.0) / 1e6
        reading.gauge("pgbouncer.max_wait_seconds", wait, labels)
        waiting += finite(row.get("cl_waiting")) or 0.0
        longest_wait = max(longest_wait, wait)
    reading.gauge("pgbouncer.pools", len(rows))
    reading.gauge("pgbouncer.clients_waiting_total", waiting)
    reading.gauge("pgbouncer.max_wait_seconds_any", longest_wait)


def _stats(rows: list[dict], reading: PgReading) -> None:
    for row in rows:
        labels = {"database": label(row.get("database"))}
        for column, metric in STATS_RATES.items():
            reading.gauge(metric, row.get(column), labels)
        for column, metric in STATS_TIMES.items():
            micros = finite(row.get(column))
            if micros is not None:
                reading.gauge(metric, micros / 1000, labels)


def _lists(rows: list[dict], reading: PgReading) -> None:
    for row in rows:
        name = str(row.get("list"))
        if name in LISTS:
            reading.gauge(f"pgbouncer.{name}", row.get("items"))
