"""File rows as plain JSON-able dicts, for the API and the CLI."""

from __future__ import annotations

from monitor_app.store.base import iso
from monitor_app.store.models.files import FileBackup, FileChange, FileWatch

WATCH_STATUSES = ("pending", "ok", "unavailable", "error", "removed")
CHANGE_TYPES = ("created", "modified", "deleted", "moved", "permissions_changed", "config_changed")
BACKUP_STATES = ("in_progress", "completed", "corrupt", "deleted")


def watch_dict(w: FileWatch) -> dict:
    return {"id": w.id, "path": w.path, "source": w.source, "asset_id": w.asset_id, "kinds": w.kinds,
            "recursive": (w.spec or {}).get("recursive", True), "include": (w.spec or {}).get("include", []),
            "exclude": (w.spec or {}).get("exclude", []), "events": (w.spec or {}).get("events", []),
            "backup": (w.spec or {}).get("backup"), "status": w.status, "status_detail": w.status_detail,
            "entries": w.entries, "total_bytes": w.total_bytes, "unreadable": w.errors or {},
            "pending_restart": w.pending_restart or [], "last_scan_at": iso(w.last_scan_at),
            "last_full_scan_at": iso(w.last_full_scan_at), "last_change_at": iso(w.last_change_at)}


def change_dict(c: FileChange) -> dict:
    out = {"id": c.id, "watch_id": c.watch_id, "asset_id": c.asset_id, "path": c.path, "type": c.type,
           "severity": c.severity, "fields": c.fields, "old": c.old, "new": c.new, "reason": c.reason,
           "observed_at": iso(c.observed_at)}
    if c.dest:
        out["dest"] = c.dest
    if c.diff is not None:
        out["diff"] = c.diff
    return out


def backup_dict(b: FileBackup) -> dict:
    return {"id": b.id, "watch_id": b.watch_id, "path": b.path, "size": b.size, "state": b.state,
            "first_seen_at": iso(b.first_seen_at), "completed_at": iso(b.completed_at), "sha256": b.sha256,
            "format": b.format, "detail": b.detail}
