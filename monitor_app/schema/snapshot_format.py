"""The snapshot document shared by both engines, the CLI files and the store.

    {"format": 1, "engine": "postgresql" | "sqlite", "identity": "oid" | "name",
     "database": ..., "server_version": ..., "taken_at": ISO-8601,
     "objects": {key: {"type", "name", "local", "parent", "attrs", ["rows"]}}}

`key` is the object's stable identity: catalogue OIDs and attnums on PostgreSQL, so a
rename keeps its key and is reported as a rename; names on SQLite, which has no OIDs.
`name` is the display name used in change records, `local` the object's own name (a rename
changes it, a rename of the parent does not), `parent` the key of the owning object (used
to fold children into an added or removed parent). `attrs` is what the diff compares;
`rows` (row estimate) informs the risk rubric but is never compared, so ANALYZE is a no-op;
`position` (SQLite column order) and `rootpage` (SQLite b-tree root, kept by a table rename)
only help match renames; `volatile_default` (PostgreSQL column) informs the rubric.

A snapshot taken just now, one read from a file and one read from the store are the same
document only after `canonical`: the diff starts there, so its answer does not depend on
where a snapshot came from.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monitor_app.errors import DbmonError

FORMAT = 1


class SnapshotError(DbmonError):
    """A snapshot could not be taken or read (bad file, bad DSN, unreachable database)."""


def new_snapshot(engine: str, identity: str, database: str, server_version: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "engine": engine,
        "identity": identity,
        "database": database,
        "server_version": server_version,
        "taken_at": datetime.now(timezone.utc).isoformat(),
        "objects": {},
    }


def add_object(snapshot: dict, key: str, type_: str, name: str, local: str, parent: str | None,
               attrs: dict[str, Any], rows: float | None = None) -> None:
    obj: dict[str, Any] = {"type": type_, "name": name, "local": local, "parent": parent, "attrs": attrs}
    if rows is not None:
        obj["rows"] = rows
    snapshot["objects"][key] = obj


def content_hash(snapshot: dict) -> str:
    """Hash of what the diff compares: identical hashes mean no change to report."""
    material = {
        key: [obj["type"], obj["name"], obj["local"], obj["parent"], obj["attrs"]]
        for key, obj in snapshot["objects"].items()
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def canonical(snapshot: dict) -> dict:
    """The snapshot as its JSON document reads back: lists, strings and JSON scalars only.
    Key order may still differ (a file's is sorted); nothing that compares depends on it."""
    return json.loads(json.dumps(snapshot, separators=(",", ":"), default=str))


def validate(doc: Any, source: str) -> dict:
    """Check a loaded document is a snapshot, naming the offending field otherwise."""
    if not isinstance(doc, dict):
        raise SnapshotError(f"{source}: not a snapshot (expected a JSON object)", permanent=True)
    if doc.get("format") != FORMAT:
        raise SnapshotError(f"{source}: field 'format' must be {FORMAT}, got {doc.get('format')!r}",
                            permanent=True, field="format")
    for field in ("engine", "identity", "objects"):
        if field not in doc:
            raise SnapshotError(f"{source}: missing field '{field}'", permanent=True, field=field)
    if not isinstance(doc["objects"], dict):
        raise SnapshotError(f"{source}: field 'objects' must be an object", permanent=True, field="objects")
    for key, obj in doc["objects"].items():
        missing = [f for f in ("type", "name", "local", "parent", "attrs") if f not in obj]
        if missing:
            raise SnapshotError(f"{source}: objects.{key} lacks {', '.join(missing)}",
                                permanent=True, field=f"objects.{key}")
    return doc


def load_file(path: str | Path) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})", permanent=True) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})", permanent=True) from None
    return validate(doc, str(path))


def dump(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=1, sort_keys=True, default=str)
