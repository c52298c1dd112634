"""What the PostgreSQL fast tier reads (13 to 17), as readings free of any store or schedule.

A poll is one read-only transaction: dbmon adds one commit per poll to the database it watches,
and every statistic comes from one snapshot. Each group of queries runs under its own savepoint,
so a group the role may not read (or that times out) is reported as a problem while the other
groups still count. dbmon's own sessions (application_name `dbmon...`) are left out of what is
reported about sessions, transactions and locks.

Everything read is bounded: labels are cut to a length, lists (standbys, slots, lock modes) to a
count, and numbers that are not finite are dropped.
"""

from __future__ import annotations

import psycopg2

from monitor_app.metrics.pg_reading import (MAX_ROWS, MIN_VERSION, OWN_SESSIONS, STATEMENT_MARK, PgReading,
                                            UnsupportedServer, finite, first_line, label, read_transaction)

# A session of another role, seen without pg_read_all_stats: its database shows, its type does not.
HIDDEN_SESSION = "(backend_type IS NULL AND datname IS NOT NULL)"

STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
          "disabled")
WAIT_EVENT_TYPES = ("Activity", "BufferPin", "Client", "Extension", "IO", "IPC", "Lock", "LWLock", "Timeout")
LOCK_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
              "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

DATABASE_COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched",
                     "tup_inserted", "tup_updated", "tup_deleted", "temp_files", "temp_bytes", "deadlocks",
                     "conflicts", "checksum_failures")
SESSION_COUNTERS = ("sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed", "session_time",
                    "active_time", "idle_in_transaction_time")  # 14+; the times are milliseconds

# The queries below are composed only from this module's constants (hence `nosec B608`).
SERVER_SQL = """
SELECT current_setting('server_version_num')::int,
       extract(epoch FROM pg_postmaster_start_time())::float8,
       pg_is_in_recovery(),
       current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE (backend_type = 'client backend' OR {hidden}) AND {own}),
       (SELECT count(*) FROM pg_stat_activity WHERE {hidden} AND {own}),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
""".format(own=OWN_SESSIONS, hidden=HIDDEN_SESSION)  # nosec B608


def database_sql(version: int) -> str:
    columns = DATABASE_COUNTERS + (SESSION_COUNTERS if version >= 140000 else ())
    return (f"SELECT extract(epoch FROM stats_reset)::float8, {', '.join(c + '::float8' for c in columns)} "
            "FROM pg_stat_database WHERE datname = current_database()")  # nosec B608


ACTIVITY_SQL = """
WITH a AS (
  SELECT pid, state, wait_event_type, xact_start, query_start, state_change
  FROM pg_stat_activity
  WHERE datname = current_database() AND backend_type = 'client backend' AND {own}
)
SELECT (SELECT coalesce(json_object_agg(s, n), '{{}}') FROM
          (SELECT state AS s, count(*) AS n FROM a WHERE state IS NOT NULL GROUP BY state LIMIT {rows}) x),
       (SELECT coalesce(json_object_agg(w, n), '{{}}') FROM
          (SELECT wait_event_type AS w, count(*) AS n FROM a WHERE state = 'active' AND wait_event_type IS NOT NULL
           GROUP BY wait_event_type LIMIT {rows}) x),
       (SELECT count(*) FROM a WHERE state LIKE 'idle in transaction%'),
       (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)::float8
          FROM a WHERE state LIKE 'idle in transaction%'),
       (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 FROM a),
       (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8
          FROM a WHERE state = 'active'),
       (SELECT count(*) FROM a WHERE wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0)
""".format(own=OWN_SESSIONS, rows=MAX_ROWS)  # nosec B608

OWN_SESSIONS_OF_A = OWN_SESSIONS.replace("application_name", "a.application_name").replace("pid <>", "a.pid <>")
LOCKS_SQL = """
SELECT l.mode, l.granted, count(*)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.datname = current_database() AND a.backend_type = 'client backend' AND {own}
GROUP BY l.mode, l.granted LIMIT {rows}
""".format(own=OWN_SESSIONS_OF_A, rows=MAX_ROWS)  # nosec B608

# On a standby the WAL position is what has been replayed; pg_current_wal_lsn() refuses there.
WAL_POSITION = ("CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END")

WAL_SQL = f"""
SELECT pg_wal_lsn_diff({WAL_POSITION}, '0/0')::float8,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END::float8,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            ELSE greatest(coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)
       END::float8
"""  # nosec B608

# A standby that has replayed everything sent has no lag, whatever replay_lag last said.
REPLICATION_SQL = f"""
SELECT coalesce(nullif(application_name, ''), host(client_addr), pid::text), state,
       CASE WHEN replay_lsn IS NULL THEN NULL  -- left out until the standby reports a position
            ELSE greatest(pg_wal_lsn_diff({WAL_POSITION}, replay_lsn), 0) END::float8,
       CASE WHEN replay_lsn IS NULL THEN NULL WHEN replay_lsn >= sent_lsn THEN 0
            ELSE coalesce(extract(epoch FROM replay_lag), 0) END::float8
FROM pg_stat_replication ORDER BY 1 LIMIT {MAX_ROWS}
"""  # nosec B608

SLOTS_SQL = f"""
SELECT slot_name, slot_type, active,
       greatest(pg_wal_lsn_diff({WAL_POSITION}, restart_lsn), 0)::float8
FROM pg_replication_slots ORDER BY slot_name LIMIT {MAX_ROWS}
"""  # nosec B608


def statements(version: int) -> dict[str, str]:
    return {"fast_server": SERVER_SQL, "fast_database": database_sql(version), "fast_activity": ACTIVITY_SQL,
            "fast_locks": LOCKS_SQL, "fast_wal": WAL_SQL, "fast_replication": REPLICATION_SQL,
            "fast_slots": SLOTS_SQL}


def prepare_fast(conn) -> list[str]:
    """Prepare the poll's statements on a new connection (autocommit); returns those that failed.

    A kept connection plans each query once instead of on every poll: planning the views over
    pg_stat_activity was most of the backend's CPU per poll. A statement that cannot be prepared
    fails its group at every poll, with the reason, and leaves the others alone."""
    failed = []
    with conn.cursor() as cur:
        for name, sql in statements(conn.server_version).items():
            try:
                cur.execute(f"PREPARE {name} AS {STATEMENT_MARK} {sql}")
            except psycopg2.Error as exc:
                if conn.closed:
                    raise
                failed.append(f"{name}: {first_line(exc)}")
    return failed


def read_fast(conn) -> PgReading:
    """One fast-tier poll through an open autocommit connection that `prepare_fast` prepared, in
    one read-only transaction."""
    reading = PgReading()
    read_transaction(conn, reading, _server, (
        ("pg_stat_database", _database), ("pg_stat_activity", _activity), ("pg_locks", _locks), ("wal", _wal),
        ("pg_stat_replication", _replication), ("pg_replication_slots", _slots)))
    return reading


def _server(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_server")
    version, started, in_recovery, max_connections, connections, hidden, reads_all = cur.fetchone()
    if not isinstance(version, int) or version < MIN_VERSION:
        raise UnsupportedServer(f"PostgreSQL {version} is older than 13, which the fast tier does not read")
    reading.version, reading.started = version, finite(started)
    reading.gauge("pg.in_recovery", 1 if in_recovery else 0)
    reading.gauge("pg.max_connections", max_connections)
    reading.gauge("pg.connections", connections)
    if max_connections:
        reading.gauge("pg.connections_used_ratio", connections / max_connections)
    if reading.started is not None:
        reading.gauge("pg.start_time_seconds", reading.started)
    if hidden and not reads_all:
        reading.problems.append(f"missing privileges: {hidden} sessions of other roles are hidden "
                                "(grant pg_monitor to the monitoring role)")


def _database(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_database")
    row = cur.fetchone()
    if row is None:
        raise psycopg2.errors.UndefinedTable("no pg_stat_database row for the current database")
    reading.stats_reset = finite(row[0])
    columns = DATABASE_COUNTERS + (SESSION_COUNTERS if reading.version >= 140000 else ())
    for name, value in zip(columns, row[1:], strict=True):
        number = finite(value)
        if number is not None:
            reading.counters[name] = number


def _activity(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_activity")
    by_state, by_wait, idle_in_xact, idle_oldest, longest_xact, longest_query, blocked = cur.fetchone()
    by_state = by_state if isinstance(by_state, dict) else {}
    by_wait = by_wait if isinstance(by_wait, dict) else {}
    for state in sorted(set(STATES) | set(by_state)):
        reading.gauge("pg.sessions_by_state", by_state.get(state, 0), {"state": label(state)})
    for wait in sorted(set(WAIT_EVENT_TYPES) | set(by_wait)):
        reading.gauge("pg.sessions_waiting", by_wait.get(wait, 0), {"wait_event_type": label(wait)})
    reading.gauge("pg.idle_in_transaction", idle_in_xact)
    reading.gauge("pg.idle_in_transaction_oldest_seconds", idle_oldest)
    reading.gauge("pg.longest_transaction_seconds", longest_xact)
    reading.gauge("pg.longest_query_seconds", longest_query)
    reading.gauge("pg.blocked_sessions", blocked)


def _locks(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_locks")
    held: dict[str, float] = dict.fromkeys(LOCK_MODES, 0)
    waiting = 0
    for mode, granted, count in cur.fetchall():
        held[str(mode)] = held.get(str(mode), 0) + count
        if not granted:
            waiting += count
    for mode in sorted(held):
        reading.gauge("pg.locks", held[mode], {"mode": label(mode)})
    reading.gauge("pg.locks_waiting", waiting)


def _wal(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_wal")
    position, replay_lag, replay_lag_bytes = cur.fetchone()
    reading.wal_position = finite(position)
    if reading.wal_position is not None:
        reading.gauge("pg.wal_position_bytes", reading.wal_position)
    if replay_lag is not None:
        reading.gauge("pg.replay_lag_seconds", max(0.0, float(replay_lag)))
        reading.gauge("pg.replay_lag_bytes", replay_lag_bytes)


def _replication(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_replication")
    rows = cur.fetchall()
    reading.gauge("pg.standbys", len(rows))
    for name, state, lag_bytes, lag_seconds in rows:
        labels = {"standby": label(name)}
        reading.gauge("pg.replication_lag_bytes", lag_bytes, labels)
        reading.gauge("pg.replication_lag_seconds", lag_seconds, labels)
        reading.gauge("pg.standby_streaming", 1 if state == "streaming" else 0, labels)


def _slots(cur, reading: PgReading) -> None:
    cur.execute("EXECUTE fast_slots")
    inactive = 0
    for name, kind, active, retained in cur.fetchall():
        labels = {"slot": label(name), "type": label(kind)}
        reading.gauge("pg.slot_retained_wal_bytes", retained, labels)
        reading.gauge("pg.slot_active", 1 if active else 0, labels)
        inactive += 0 if active else 1
    reading.gauge("pg.slots_inactive", inactive)
