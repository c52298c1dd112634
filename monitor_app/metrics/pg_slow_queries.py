"""What the PostgreSQL slow tier reads (13 to 17): sizes, vacuum health, unused indexes,
transaction-id wraparound and the server's settings, as readings free of any store or schedule.

Every ten minutes by default, in one read-only transaction with a savepoint per group. Sizes of
every table would cost a stat() per file on a database with many tables: the largest ones are
chosen by the planner's page counts (`relpages`, kept by VACUUM and ANALYZE), and only those
`top` are measured exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor_app.metrics.pg_reading import (MIN_VERSION, STATEMENT_MARK, PgReading, UnsupportedServer, finite, label,
                                            read_transaction)

MAX_SETTINGS = 500
SETTING_CHARS = 200
# Settings as the server or an administrator set them, not as dbmon's own session overrides them.
SETTING_SOURCES = ("configuration file", "command line", "environment variable", "global", "database", "user",
                   "database user")

SERVER_SQL = (f"SELECT {STATEMENT_MARK} current_setting('server_version_num')::int, "  # nosec B608
              "extract(epoch FROM pg_postmaster_start_time())::float8, pg_database_size(current_database())::float8, "
              "age(d.datfrozenxid)::float8, current_setting('autovacuum_freeze_max_age')::float8 "
              "FROM pg_database d WHERE d.datname = current_database()")


def relations_sql(top: int) -> str:
    return f"""
SELECT {STATEMENT_MARK} format('%I.%I', n.nspname, c.relname), pg_total_relation_size(c.oid)::float8,
       s.n_live_tup::float8, s.n_dead_tup::float8,
       extract(epoch FROM clock_timestamp() - greatest(s.last_autovacuum, s.last_vacuum))::float8,
       age(c.relfrozenxid)::float8
FROM (SELECT oid, relname, relnamespace, relfrozenxid FROM pg_class
      WHERE relkind IN ('r', 'm') AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
        AND relpersistence <> 't'
      ORDER BY relpages DESC, oid LIMIT {int(top)}) c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
"""  # nosec B608 - composed from this module's constants and an int


def unused_indexes_sql(top: int) -> str:
    return f"""
SELECT {STATEMENT_MARK} format('%I.%I', s.schemaname, s.indexrelname), pg_relation_size(s.indexrelid)::float8,
       count(*) OVER (), sum(pg_relation_size(s.indexrelid)) OVER ()::float8
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
ORDER BY 2 DESC, 1 LIMIT {int(top)}
"""  # nosec B608 - composed from this module's constants and an int


SETTINGS_SQL = f"""
SELECT {STATEMENT_MARK} name, setting, pending_restart FROM pg_settings
WHERE source IN ({", ".join("'" + s + "'" for s in SETTING_SOURCES)}) ORDER BY name LIMIT {MAX_SETTINGS}
"""  # nosec B608


@dataclass
class SlowReading(PgReading):
    settings: dict[str, str] | None = None  # None: could not be read this time
    pending_restart: list[str] = field(default_factory=list)


def read_slow(conn, top: int) -> SlowReading:
    reading = SlowReading()
    read_transaction(conn, reading, _server, (
        ("relations", lambda cur, r: _relations(cur, r, top)),
        ("unused indexes", lambda cur, r: _unused_indexes(cur, r, top)),
        ("pg_settings", _settings)))
    return reading


def _server(cur, reading: SlowReading) -> None:
    cur.execute(SERVER_SQL)
    version, started, size, frozen_age, freeze_max = cur.fetchone()
    if not isinstance(version, int) or version < MIN_VERSION:
        raise UnsupportedServer(f"PostgreSQL {version} is older than 13, which the slow tier does not read")
    reading.version, reading.started = version, finite(started)
    reading.gauge("pg.database_size_bytes", size)
    reading.gauge("pg.datfrozenxid_age", frozen_age)
    if freeze_max:
        # At 1 autovacuum forces an anti-wraparound vacuum; the hard stop is near 2^31 / freeze_max_age.
        reading.gauge("pg.wraparound_ratio", (finite(frozen_age) or 0.0) / freeze_max)


def _relations(cur, reading: SlowReading, top: int) -> None:
    cur.execute(relations_sql(top))
    for name, size, live, dead, vacuum_age, xid_age in cur.fetchall()[:top]:
        labels = {"relation": label(name)}
        reading.gauge("pg.relation_size_bytes", size, labels)
        live_n, dead_n = finite(live) or 0.0, finite(dead) or 0.0
        if live_n + dead_n > 0:
            reading.gauge("pg.relation_dead_tuple_ratio", dead_n / (live_n + dead_n), labels)
        reading.gauge("pg.relation_dead_tuples", dead_n, labels)
        if vacuum_age is not None:  # never vacuumed: no age rather than a made-up one
            reading.gauge("pg.relation_vacuum_age_seconds", max(0.0, finite(vacuum_age) or 0.0), labels)
        reading.gauge("pg.relation_xid_age", xid_age, labels)


def _unused_indexes(cur, reading: SlowReading, top: int) -> None:
    cur.execute(unused_indexes_sql(top))
    rows = cur.fetchall()[:top]
    reading.gauge("pg.unused_indexes", rows[0][2] if rows else 0)
    reading.gauge("pg.unused_indexes_bytes", rows[0][3] if rows else 0)
    for name, size, _, _ in rows:
        reading.gauge("pg.unused_index_size_bytes", size, {"index": label(name)})


def _settings(cur, reading: SlowReading) -> None:
    cur.execute(SETTINGS_SQL)
    settings = {}
    for name, value, pending in cur.fetchall()[:MAX_SETTINGS]:
        settings[str(name)[:SETTING_CHARS]] = str(value)[:SETTING_CHARS]
        if pending:
            reading.pending_restart.append(str(name)[:SETTING_CHARS])
    reading.settings = settings
    reading.gauge("pg.settings_pending_restart", len(reading.pending_restart))
