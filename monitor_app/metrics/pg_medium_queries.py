"""What the PostgreSQL medium tier reads (13 to 17), as readings free of any store or schedule.

Every minute by default: the statements that took the most time (`pg_stat_statements`, when the
extension is installed in the watched database), the background writer and checkpointer, the
WAL archiver, the vacuums running now, and the size of the WAL directory. Server-wide counters are kept raw, each source with
the identity of its life (`stats_reset`), so a reset of one drops only its own interval.

`pg_stat_statements` is read only from the schema its extension was created in, and only if the
view there is a member of the extension: a database owner could otherwise put a view of that
name on the search path. Statements dbmon sends carry `STATEMENT_MARK` and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor_app.metrics.pg_reading import (MAX_ROWS, MIN_VERSION, STATEMENT_MARK, PgReading, UnsupportedServer,
                                            finite, label, read_transaction, text_label)

MAX_VACUUMS = 20
# Per statement: calls, exec time (ms), rows, shared blocks hit, shared blocks read, temp blocks written.
STATEMENT_FIELDS = ("calls", "exec_ms", "rows", "blks_hit", "blks_read", "temp_blks_written")

# Every query here is composed from this module's constants and, for the statements view, a
# schema name quoted as an identifier (hence `nosec B608`).
SERVER_SQL = (f"SELECT {STATEMENT_MARK} current_setting('server_version_num')::int, "  # nosec B608
              "extract(epoch FROM pg_postmaster_start_time())::float8")

EXTENSION_SQL = f"""
SELECT {STATEMENT_MARK} n.nspname,
       to_regclass(quote_ident(n.nspname) || '.pg_stat_statements_info') IS NOT NULL
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements' AND EXISTS (
  SELECT 1 FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
  WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
    AND c.relname = 'pg_stat_statements' AND c.relnamespace = e.extnamespace)
"""  # nosec B608


WAL_DIRECTORY_SQL = f"SELECT {STATEMENT_MARK} count(*), coalesce(sum(size), 0)::float8 FROM pg_ls_waldir()"  # nosec B608


def statements_sql(schema: str, version: int, tracked: int) -> str:
    """The `tracked` statements with the most time and the `tracked` with the most calls since
    their last reset, one row per query id (summed over roles)."""
    quoted = '"' + schema.replace('"', '""') + '"'
    toplevel = "AND toplevel" if version >= 140000 else ""  # nested statements would count twice
    return f"""
WITH s AS (
  SELECT {STATEMENT_MARK} queryid, min(left(query, 200)) AS query, sum(calls)::float8 AS calls,
         sum(total_exec_time)::float8 AS exec_ms, sum(rows)::float8 AS rows, sum(shared_blks_hit)::float8 AS hit,
         sum(shared_blks_read)::float8 AS read, sum(temp_blks_written)::float8 AS temp
  FROM {quoted}.pg_stat_statements
  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL
    AND query NOT LIKE '%{STATEMENT_MARK}%' {toplevel}
  GROUP BY queryid
)
SELECT *, (SELECT count(*) FROM s) FROM (
  (SELECT * FROM s ORDER BY exec_ms DESC LIMIT {int(tracked)})
  UNION
  (SELECT * FROM s ORDER BY calls DESC LIMIT {int(tracked)})) AS top
"""  # nosec B608 - the schema is quoted; everything else is this module's constants


def statements_info_sql(schema: str) -> str:
    quoted = '"' + schema.replace('"', '""') + '"'
    return f"SELECT {STATEMENT_MARK} dealloc::float8, extract(epoch FROM stats_reset)::float8 FROM {quoted}.pg_stat_statements_info"  # nosec B608


# Names as the checkpointer reports them before 17; 17 moved them to pg_stat_checkpointer and
# buffers written by backends to pg_stat_io. Before 17 a standby's restartpoints count as
# checkpoints; 17 counts them apart, so they are added back and the series mean the same.
BGWRITER_COUNTERS = ("checkpoints_timed", "checkpoints_requested", "checkpoint_write_ms", "checkpoint_sync_ms",
                     "buffers_checkpoint", "buffers_clean", "maxwritten_clean", "buffers_backend", "buffers_alloc")


def bgwriter_sql(version: int) -> str:
    if version >= 170000:
        return (f"SELECT {STATEMENT_MARK} extract(epoch FROM greatest(c.stats_reset, b.stats_reset))::float8, "  # nosec B608
                "c.num_timed + c.restartpoints_timed, c.num_requested + c.restartpoints_req, c.write_time, "
                "c.sync_time, c.buffers_written, b.buffers_clean, b.maxwritten_clean, NULL, b.buffers_alloc "
                "FROM pg_stat_checkpointer c, pg_stat_bgwriter b")
    return (f"SELECT {STATEMENT_MARK} extract(epoch FROM stats_reset)::float8, checkpoints_timed, checkpoints_req, "  # nosec B608
            "checkpoint_write_time, checkpoint_sync_time, buffers_checkpoint, buffers_clean, maxwritten_clean, "
            "buffers_backend, buffers_alloc FROM pg_stat_bgwriter")


ARCHIVER_SQL = f"""
SELECT {STATEMENT_MARK} extract(epoch FROM stats_reset)::float8, archived_count::float8, failed_count::float8,
       extract(epoch FROM clock_timestamp() - last_archived_time)::float8,
       coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
       current_setting('archive_mode') IN ('on', 'always')
FROM pg_stat_archiver
"""  # nosec B608

VACUUM_SQL = f"""
SELECT {STATEMENT_MARK} p.relid::regclass::text, p.heap_blks_total::float8, p.heap_blks_scanned::float8,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8, coalesce(a.query LIKE 'autovacuum:%', false)
FROM pg_stat_progress_vacuum p LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY 4 DESC NULLS LAST LIMIT {MAX_ROWS}
"""  # nosec B608


@dataclass
class MediumReading(PgReading):
    """A medium-tier poll: gauges, each server-wide source's counters with its last reset
    (`lives`), and the statements read with their cumulative numbers (query id -> text, numbers)."""

    lives: dict[str, tuple[float | None, dict[str, float]]] = field(default_factory=dict)
    statements: dict[str, tuple[str, tuple[float, ...]]] | None = None
    statements_reset: float | None = None
    statements_complete: bool = False  # every statement of the database was read, not only the top


def read_medium(conn, tracked: int) -> MediumReading:
    """One medium-tier poll through an open autocommit connection, in one read-only transaction."""
    reading = MediumReading()
    read_transaction(conn, reading, _server, (
        ("pg_stat_statements", lambda cur, r: _statements(cur, r, tracked)),
        ("pg_stat_bgwriter", _bgwriter), ("pg_stat_archiver", _archiver),
        ("pg_stat_progress_vacuum", _vacuums), ("pg_ls_waldir", _wal_directory)))
    return reading


def _server(cur, reading: MediumReading) -> None:
    cur.execute(SERVER_SQL)
    version, started = cur.fetchone()
    if not isinstance(version, int) or version < MIN_VERSION:
        raise UnsupportedServer(f"PostgreSQL {version} is older than 13, which the medium tier does not read")
    reading.version, reading.started = version, finite(started)


def _statements(cur, reading: MediumReading, tracked: int) -> None:
    cur.execute(EXTENSION_SQL)
    row = cur.fetchone()
    reading.gauge("pg.statements_available", 0 if row is None else 1)
    if row is None:
        return  # not installed in this database: nothing to read, and nothing wrong
    schema, has_info = str(row[0]), bool(row[1])
    cur.execute(statements_sql(schema, reading.version, tracked))
    rows = cur.fetchall()[: 2 * tracked]
    statements = {}
    for queryid, query, *numbers, _ in rows:
        values = tuple(finite(n) or 0.0 for n in numbers)
        statements[str(queryid)] = (text_label(query), values)
    reading.statements = statements
    reading.statements_complete = not rows or (finite(rows[0][-1]) or 0) <= tracked
    reading.gauge("pg.statements_tracked", len(statements))
    if has_info:  # 14+ with extension 1.9+
        cur.execute(statements_info_sql(schema))
        dealloc, reset = cur.fetchone()
        reading.statements_reset = finite(reset)
        if finite(dealloc) is not None:
            reading.lives["statements_info"] = (reading.statements_reset, {"dealloc": float(dealloc)})


def _bgwriter(cur, reading: MediumReading) -> None:
    cur.execute(bgwriter_sql(reading.version))
    reset, *values = cur.fetchone()
    counters = {name: number for name, value in zip(BGWRITER_COUNTERS, values, strict=True)
                if (number := finite(value)) is not None}
    reading.lives["bgwriter"] = (finite(reset), counters)


def _archiver(cur, reading: MediumReading) -> None:
    cur.execute(ARCHIVER_SQL)
    reset, archived, failed, last_success_age, failing, enabled = cur.fetchone()
    reading.gauge("pg.archive_mode", 1 if enabled else 0)
    if not enabled:
        return
    reading.lives["archiver"] = (finite(reset), {name: number for name, value in
                                                  (("archived", archived), ("archive_failed", failed))
                                                  if (number := finite(value)) is not None})
    reading.gauge("pg.archive_failing", 1 if failing else 0)
    if last_success_age is not None:
        reading.gauge("pg.archive_last_success_age_seconds", max(0.0, float(last_success_age)))


def _wal_directory(cur, reading: MediumReading) -> None:
    # pg_ls_waldir needs pg_monitor (or superuser); without it this group alone is missing.
    cur.execute(WAL_DIRECTORY_SQL)
    files, size = cur.fetchone()
    reading.gauge("pg.wal_directory_files", files)
    reading.gauge("pg.wal_directory_bytes", size)


def _vacuums(cur, reading: MediumReading) -> None:
    cur.execute(VACUUM_SQL)
    rows = cur.fetchall()
    reading.gauge("pg.vacuums_running", len(rows))
    for relation, total, scanned, running, auto in rows[:MAX_VACUUMS]:
        labels = {"relation": label(relation), "kind": "autovacuum" if auto else "manual"}
        if total:
            reading.gauge("pg.vacuum_scanned_ratio", min(1.0, (finite(scanned) or 0.0) / total), labels)
        reading.gauge("pg.vacuum_running_seconds", max(0.0, finite(running) or 0.0), labels)
