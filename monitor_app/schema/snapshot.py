"""One entry point for a snapshot, whatever the source: a DSN of either engine or a saved file."""

from __future__ import annotations

from pathlib import Path

from monitor_app.schema import postgres_snapshot, sqlite_snapshot
from monitor_app.schema.snapshot_format import SnapshotError, load_file

PG_SCHEMES = ("postgresql://", "postgres://")


def engine_of(dsn: str) -> str:
    if dsn.startswith(PG_SCHEMES):
        return "postgresql"
    if dsn.startswith("sqlite:"):
        return "sqlite"
    raise SnapshotError(f"unsupported DSN {dsn!r}: expected postgresql://... or sqlite:///path",
                        permanent=True, field="dsn")


def take_snapshot(dsn: str) -> dict:
    if engine_of(dsn) == "postgresql":
        return postgres_snapshot.take_snapshot(dsn)
    return sqlite_snapshot.take_snapshot(dsn)


def resolve(source: str) -> dict:
    """A DSN is snapshotted now; anything else must be a snapshot file written earlier."""
    if source.startswith(PG_SCHEMES) or source.startswith("sqlite:"):
        return take_snapshot(source)
    if not Path(source).exists():
        raise SnapshotError(f"{source}: no such snapshot file (and not a postgresql:// or sqlite:/// DSN)",
                            permanent=True)
    return load_file(source)
