"""Cheap "did anything change?" markers, read before paying for a full snapshot.

PostgreSQL: a hash over (identity, xmin) of every catalogue row a snapshot reads. Any DDL
writes a new row version (new xmin); ANALYZE and VACUUM update pg_class in place, which
keeps xmin, so they leave the marker alone. It needs no privilege beyond reading the
catalogue, and it sees DDL that event triggers never fire for (for example under
`session_replication_role = replica`). A changed marker only means "take a snapshot": the
diff of contents decides whether anything is reported.

SQLite: `PRAGMA schema_version` plus the file's identity (a replaced file is a new schema).
"""

from __future__ import annotations

import os
from pathlib import Path

from monitor_app.schema import sqlite_snapshot

CATALOGUE_MARKERS = {
    "pg_namespace": "oid", "pg_class": "oid", "pg_attribute": "attrelid::text || '.' || attnum",
    "pg_attrdef": "oid", "pg_constraint": "oid", "pg_index": "indexrelid", "pg_inherits": "inhrelid",
    "pg_trigger": "oid", "pg_proc": "oid", "pg_type": "oid", "pg_enum": "oid", "pg_sequence": "seqrelid",
    "pg_extension": "oid", "pg_policy": "oid", "pg_description": "objoid::text || '.' || objsubid",
    "pg_rewrite": "oid",
}

# Catalogue names come from the constant table above, never from input.
MARKER_SQL = "SELECT md5(string_agg(part, ',' ORDER BY part)) FROM (" + " UNION ALL ".join(  # nosec B608
    f"SELECT '{cat}:' || count(*) || ':' "  # nosec B608
    f"|| coalesce(sum(hashtext(({ident})::text || '@' || xmin::text)), 0) AS part "
    f"FROM {cat}" for cat, ident in CATALOGUE_MARKERS.items()
) + ") AS parts"


def postgres_marker(conn) -> str:
    previous = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(MARKER_SQL)
            return cur.fetchone()[0]
    finally:
        conn.autocommit = previous


def sqlite_marker(path: str | Path) -> str:
    path = sqlite_snapshot.path_from_dsn(str(path))
    stat = os.stat(path)
    return f"{stat.st_dev}:{stat.st_ino}:{sqlite_snapshot.schema_version(path)}"
