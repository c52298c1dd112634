"""dbmon's sessions in a monitored database resolve names in pg_catalog first.

The database's owner decides every session's default search_path (ALTER DATABASE ... SET) and
can put `public` before `pg_catalog`, then shadow catalogue functions and operators there: a
superuser's unqualified call would run the owner's code. Putting `pg_catalog` explicitly first,
ahead of whatever the database configured, closes that without changing which other schemas
are visible, so names in snapshot text (`regclass`, `format_type`) read as they always did.
"""

from __future__ import annotations


def catalogue_first(conn) -> None:
    """Prepend pg_catalog to the session's search_path, for the life of the session."""
    with conn.cursor() as cur:
        cur.execute("SHOW search_path")
        current = cur.fetchone()[0]
        cur.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (f"pg_catalog, {current}",))
    if not conn.autocommit:
        conn.commit()  # a setting made in a transaction that is rolled back would not stick
