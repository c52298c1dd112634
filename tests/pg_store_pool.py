"""One migrated PostgreSQL store per test session (per xdist worker), emptied after every test.

CREATE and DROP DATABASE cost a checkpoint each on the shared server, seconds under load, while
emptying its tables costs milliseconds. A test that left more than rows behind (a table, a trigger, a
function, another migration) or still holds a lock gets its database dropped; the next test
then gets a fresh copy of the migrated template.
"""

from __future__ import annotations

import psycopg2

from tests.services import create_pg_database, drop_pg_database

# Everything a test could add to the store besides rows; rows are what emptying removes.
SHAPE = """
SELECT (SELECT string_agg(r, ',' ORDER BY r)
          FROM (SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text AS r
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg_toast%') AS relations),
       (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),
       (SELECT count(*) FROM pg_event_trigger),
       (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')),
       (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension),
       (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version)
"""
RESTART_SEQUENCES = ("SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
                     "FROM pg_sequences WHERE schemaname = 'public'")
DATA_TABLES = "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"


def _sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg2://", 1)


def _query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


class PgStorePool:
    def __init__(self):
        from monitor_app.store.migrate import upgrade

        self.template, url = create_pg_database("dbmon_template")
        upgrade(_sqlalchemy_url(url))
        self.shape = _query(url, SHAPE)
        self.empty = "; ".join(f"DELETE FROM {r[0]}" for r in _query(url, DATA_TABLES))
        self.name: str | None = None
        self.url = ""

    def acquire(self) -> str:
        """The SQLAlchemy URL of a migrated, empty store."""
        if self.name is None:
            self.name, self.url = create_pg_database("dbmon_store", template=self.template)
        return _sqlalchemy_url(self.url)

    def release(self) -> None:
        if self.name is not None and not self._emptied():
            drop_pg_database(self.name)
            self.name = None

    def _emptied(self) -> bool:
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                # Rows only, so no fsync is worth waiting for, and no foreign key order to follow.
                cur.execute("SET lock_timeout = '2s'; SET synchronous_commit = off; "
                            "SET session_replication_role = replica")
                cur.execute(self.empty)
                cur.execute(RESTART_SEQUENCES)
                cur.execute(SHAPE)
                same = cur.fetchall() == self.shape
            conn.commit()
            return same
        except psycopg2.Error:
            return False
        finally:
            conn.close()

    def close(self) -> None:
        if self.name is not None:
            drop_pg_database(self.name)
        drop_pg_database(self.template)
