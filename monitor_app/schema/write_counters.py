"""Which databases of a server wrote any rows lately: one query answers it for all of them.

DDL inserts, updates or deletes catalogue rows, and PostgreSQL counts those writes in
`pg_stat_database` like any other table's, for every database of the server, readable from a
connection to any one of them with no privilege. A database whose counters have not moved has
run no DDL, so the fallback pre-check need not connect to it. Reading a schema (dbmon's own
checks and markers) writes no rows, so dbmon does not move them itself.

Counters are flushed by each backend when its transaction ends, but at most once a second: the
last statements of a session that also wrote less than a second earlier are counted when the
session goes idle for `PGSTAT_IDLE_INTERVAL` (10 s) or exits. With `track_counts = off` nothing
is counted; `counters_tracked` says so and the pre-check then walks every database itself.
"""

from __future__ import annotations

# The sum of the row writes per database (NULL datname: shared catalogues, left out).
COUNTERS_SQL = ("SELECT datname, coalesce(tup_inserted, 0) + coalesce(tup_updated, 0) + coalesce(tup_deleted, 0), "
                "current_setting('track_counts') FROM pg_catalog.pg_stat_database WHERE datname IS NOT NULL")


def read(conn) -> tuple[dict[str, int], bool]:
    """({database: rows written since the statistics were reset}, whether the server counts them)."""
    previous = conn.autocommit
    conn.autocommit = True  # every read its own transaction: a fresh view of the statistics
    try:
        with conn.cursor() as cur:
            cur.execute(COUNTERS_SQL)
            rows = cur.fetchall()
    finally:
        conn.autocommit = previous
    tracked = all(str(row[2]).lower() == "on" for row in rows) if rows else False
    return {str(name): int(written) for name, written, _ in rows}, tracked
