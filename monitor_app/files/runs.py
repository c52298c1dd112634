"""The file concern's scheduled work, free of Celery: which watches a periodic rescan is due for,
and the backup sweep (settling backups in progress, noticing missing ones)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from monitor_app.files import backup_run
from monitor_app.files.scan_run import run_scan
from monitor_app.store.base import utcnow
from monitor_app.store.models.files import FileChange, FileWatch


def live_watch_ids(s) -> list[int]:
    return list(s.scalars(select(FileWatch.id).where(FileWatch.status != "removed").order_by(FileWatch.id)))


def due_for_rescan(rt, now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    cutoff = now - timedelta(seconds=rt.config.files.rescan_interval)
    with rt.store.session() as s:
        return list(s.scalars(select(FileWatch.id).where(
            FileWatch.status != "removed",
            or_(FileWatch.last_full_scan_at.is_(None), FileWatch.last_full_scan_at < cutoff)).order_by(FileWatch.id)))


def backup_sweep(rt, now: datetime | None = None) -> dict:
    """Re-read backups still in progress (they may have stopped changing without another event)
    and record `backup.missing` for watches past their max age."""
    out = {"settled": 0, "missing": 0}
    with rt.store.session() as s:
        watches = [(w.id, backup_run.in_progress_paths(s, w.id)) for w in s.scalars(
            select(FileWatch).where(FileWatch.status != "removed")) if "backup" in (w.kinds or [])]
    for watch_id, paths in watches:
        if paths:
            result = run_scan(rt, watch_id, paths, reason="backup_settle", now=now)
            out["settled"] += (result.get("backups") or {}).get("completed", 0)
        with rt.store.session() as s:
            watch = s.get(FileWatch, watch_id)
            if watch is not None and watch.baseline_ready and backup_run.check_missing(s, watch, now or utcnow()):
                out["missing"] += 1
    return out


def prune(s, now: datetime, retention: timedelta) -> dict:
    """Changes past the retention, and watches removed that long ago (their changes with them)."""
    cutoff = now - retention
    changes = s.execute(delete(FileChange).where(FileChange.observed_at < cutoff)).rowcount
    watches = s.execute(delete(FileWatch).where(FileWatch.status == "removed", FileWatch.updated_at < cutoff)).rowcount
    return {"file_changes": changes, "file_watches": watches}
