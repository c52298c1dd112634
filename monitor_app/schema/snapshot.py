"""One entry point for a snapshot, whatever the source: a DSN of any engine or a saved file."""

from __future__ import annotations

from pathlib import Path

from monitor_app.schema import postgres_snapshot, sqlite_snapshot
from monitor_app.schema.snapshot_format import SnapshotError, load_file

PG_SCHEMES = ("postgresql://", "postgres://")
MYSQL_SCHEMES = ("mysql://", "mariadb://")


def engine_of(dsn: str) -> str:
    if dsn.startswith(PG_SCHEMES):
        return "postgresql"
    if dsn.startswith("sqlite:"):
        return "sqlite"
    if dsn.lower().startswith(MYSQL_SCHEMES):
        return "mysql"  # MySQL or MariaDB: the snapshot says which server answered
    raise SnapshotError(f"unsupported DSN {dsn.split('://', 1)[0]!r}: expected postgresql://..., mysql://..., "
                        "mariadb://... or sqlite:///path", permanent=True, field="dsn")


def take_snapshot(dsn: str) -> dict:
    engine = engine_of(dsn)
    if engine == "postgresql":
        return postgres_snapshot.take_snapshot(dsn)
    if engine == "mysql":
        from monitor_app.schema import mysql_snapshot  # the driver only when a MySQL DSN is used

        return mysql_snapshot.take_snapshot(dsn)
    return sqlite_snapshot.take_snapshot(dsn)


def resolve(source: str) -> dict:
    """A DSN is snapshotted now; anything else must be a snapshot file written earlier."""
    if source.startswith(PG_SCHEMES) or source.startswith("sqlite:") or source.lower().startswith(MYSQL_SCHEMES):
        return take_snapshot(source)
    if not Path(source).exists():
        raise SnapshotError(f"{source}: no such snapshot file (and not a postgresql://, mysql://, mariadb:// or "
                            "sqlite:/// DSN)", permanent=True)
    return load_file(source)
