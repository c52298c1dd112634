"""Backups under a backup watch: each file followed from first sight to `completed` (it stopped
changing for the policy's `settle`), then judged once (format, checksum, size against the
previous backup); and a watch whose newest completed backup is older than `max_age` reported
missing, once per gap.

Backups that were there when watching began are taken as completed without events: they are
the history the next backup is compared with, not news."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from sqlalchemy import func, select

from monitor_app.files.backup_check import BackupPolicy, BackupRecord, assess, is_backup_name, judge_completed, missing
from monitor_app.files.backup_format import check_format
from monitor_app.files.file_state import Changing, FileState, sha256_of
from monitor_app.platform.event_log import record_event
from monitor_app.store.models.files import FileBackup, FileWatch

SIDECAR_LIMIT = 64 << 10
FORMAT_CHECK_TIMEOUT = 120.0


def policy_of(watch: FileWatch) -> BackupPolicy:
    return BackupPolicy.model_validate((watch.spec or {}).get("backup") or {})


def _record(row: FileBackup) -> BackupRecord:
    return BackupRecord(path=row.path, size=row.size, mtime_ns=row.mtime_ns, completed_at=row.completed_at,
                        sha256=row.sha256, state=row.state, format=row.format, detail=row.detail or "")


def _latest_completed(s, watch_id: int) -> FileBackup | None:
    return s.scalars(select(FileBackup).where(FileBackup.watch_id == watch_id, FileBackup.completed_at.is_not(None),
                                              FileBackup.state != "deleted")
                     .order_by(FileBackup.completed_at.desc(), FileBackup.id.desc()).limit(1)).first()


def _sidecar(path: str) -> str | None:
    # Not followed if a symlink, not waited on if a FIFO: it sits in a directory others write to.
    try:
        fd = os.open(path + ".sha256", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.read(fd, SIDECAR_LIMIT).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _sha256(path: str, state: FileState) -> str | None:
    """The hash a sidecar is checked against; a backup past the hash limit is read once, here."""
    if state.sha256:
        return state.sha256
    try:
        return sha256_of(path, state)
    except Changing:
        return None


def judge_backups(s, watch: FileWatch, result, now: datetime, first: bool, gone: list[str]) -> dict:
    from monitor_app.files.scan_run import path_key

    policy = policy_of(watch)
    rows = {r.path: r for r in s.scalars(select(FileBackup).where(FileBackup.watch_id == watch.id))}
    counts = {"in_progress": 0, "completed": 0, "events": 0}
    for path in gone:
        # Rotated away or lost: kept as history, no longer a backup anyone can restore.
        if path in rows and rows[path].state != "deleted":
            rows[path].state = "deleted"
    for path, state in sorted(result.states.items()):
        if state.type != "file" or not is_backup_name(os.path.basename(path), policy):
            continue
        row = rows.get(path)
        if row is None:
            row = FileBackup(watch_id=watch.id, path_key=path_key(path), path=path, size=state.size,
                             mtime_ns=state.mtime_ns, state="in_progress", first_seen_at=now)
            s.add(row)
            if first:
                row.state, row.completed_at, row.detail = "completed", _mtime(state), "present when watching began"
                row.sha256 = state.sha256
                continue
        elif row.state == "deleted" or (row.size, row.mtime_ns) != (state.size, state.mtime_ns):
            row.size, row.mtime_ns, row.state, row.first_seen_at, row.completed_at = (
                state.size, state.mtime_ns, "in_progress", now, None)
        if row.state != "in_progress":
            continue
        previous = _latest_completed(s, watch.id)
        previous_record = _record(previous) if previous is not None and previous.path != path else None
        if assess(state, row.first_seen_at, previous_record, policy, now) != "ready":
            counts["in_progress"] += 1
            continue
        counts["events"] += _complete(s, watch, row, path, state, policy, previous_record, now)
        counts["completed"] += 1
    return counts


def _mtime(state: FileState) -> datetime:
    return datetime.fromtimestamp(state.mtime_ns / 1e9, tz=timezone.utc)


def _complete(s, watch, row: FileBackup, path: str, state: FileState, policy, previous, now) -> int:
    fmt = check_format(path, timeout=FORMAT_CHECK_TIMEOUT) if policy.format_check else None
    sidecar = _sidecar(path) if policy.checksum == "sidecar" else None
    sha256 = _sha256(path, state) if sidecar is not None else state.sha256
    record, events = judge_completed(path, state, policy, previous, sidecar_text=sidecar, format_check=fmt,
                                     sha256=sha256)
    row.state, row.completed_at, row.sha256 = record.state, now, record.sha256
    row.format, row.detail = record.format, record.detail
    for e in events:
        record_event(s, type=e["type"], severity=e["severity"], summary=e["summary"], asset_id=watch.asset_id,
                     payload={"watch_id": watch.id, "watch": watch.path, "path": path, **e.get("payload", {})})
    return len(events)


def in_progress_paths(s, watch_id: int) -> list[str]:
    return list(s.scalars(select(FileBackup.path).where(FileBackup.watch_id == watch_id,
                                                        FileBackup.state == "in_progress")))


def check_missing(s, watch: FileWatch, now: datetime) -> bool:
    """Record `backup.missing` once per gap: the dedupe key names the newest completed backup."""
    policy = policy_of(watch)
    # A deleted backup does not count: with the newest one rotated away, nothing is left to restore.
    latest = s.scalar(select(func.max(FileBackup.completed_at)).where(FileBackup.watch_id == watch.id,
                                                                      FileBackup.state != "deleted"))
    found = missing(latest, watch.created_at, policy, now)
    if found is None:
        return False
    since = latest.isoformat() if latest else "never"
    event = record_event(s, type=found.get("type", "backup.missing"), severity=found.get("severity", "critical"),
                         summary=found.get("summary", f"no backup in {watch.path} within its max age"),
                         asset_id=watch.asset_id, payload={"watch_id": watch.id, "watch": watch.path,
                                                           **found.get("payload", {})},
                         dedupe_key=f"backup.missing:{watch.id}:{since}")
    return event is not None
