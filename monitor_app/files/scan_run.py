"""One scan of one watch, the body of `files.scan`: read what is on disk (all of it, or the paths
file events named), compare with the baseline, store the changes, the events and the new
baseline in one unit of work.

Scans of one watch are serialised (a row lock on PostgreSQL, the write lock on SQLite, and a
process lock between threads): a scan that read the disk before another one committed would otherwise report the
other's changes backwards. A retried scan finds the baseline already moved and reports nothing
twice. The first scan of a watch only records its baseline.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from monitor_app.files import backup_run, config_changes
from monitor_app.files.change_events import JudgedChange, event_records, judge, wanted
from monitor_app.files.compare import compare, event_scope
from monitor_app.files.config import GROWTH_KINDS, HASHED_KINDS
from monitor_app.files.config_diff import guess_kind
from monitor_app.files.file_state import FileState
from monitor_app.files.tree_scan import ScanResult, ScanSpec, display_path, read_paths, scan
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import upsert_insert, utcnow
from monitor_app.store.models.files import FileChange, FileEntry, FileWatch

MAX_STORED_ERRORS = 100
GROWTH_SAMPLE_EVERY = timedelta(seconds=10)
_locks: dict[int, threading.Lock] = defaultdict(threading.Lock)


def path_key(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()


def scan_spec(watch: FileWatch, files_config) -> ScanSpec:
    return ScanSpec.of_watch(watch.path, watch.spec or {}, hash_content=any(k in HASHED_KINDS for k in watch.kinds),
                             hash_limit=files_config.hash_limit_bytes, max_entries=files_config.max_entries)


def _baseline(s, watch_id: int, paths: list[str] | None = None) -> tuple[dict[str, FileState], dict[str, dict | None]]:
    """The stored entries of a watch; with `paths` (an event scan) only those and, for a path that
    is a directory, its direct entries: loading a 50,000-entry baseline for every burst of events
    made each event scan as slow as a full rescan."""
    states: dict[str, FileState] = {}
    configs: dict[str, dict | None] = {}
    columns = select(FileEntry.path, FileEntry.state, FileEntry.config).where(FileEntry.watch_id == watch_id)
    if paths is None:
        queries = [columns]
    else:
        shown = sorted({display_path(p) for p in paths})
        queries = [columns.where(FileEntry.path_key.in_([path_key(p) for p in shown[i:i + 500]]))
                   for i in range(0, len(shown), 500)]
    for query in queries:
        for path, state, config in s.execute(query):
            states[path] = FileState.from_dict(state)
            configs[path] = config
    if paths is None:
        return states, configs
    # A directory now or in the baseline (it may be gone): its entries may have come or gone.
    for directory in [p for p in shown if os.path.isdir(p) or (p in states and states[p].type == "dir")]:
        for path, state, config in s.execute(columns.where(FileEntry.path.like(_like_prefix(directory),
                                                                              escape="\\"))):
            states[path] = FileState.from_dict(state)
            configs[path] = config
    # Deeper entries (and, on SQLite, whose LIKE ignores case, other spellings) came with the
    # prefix match; an event scan answers for the asked paths and their direct entries only.
    asked = set(shown)
    for path in [p for p in states if p not in asked and p.rsplit("/", 1)[0] not in asked]:
        del states[path], configs[path]
    return states, configs


def _like_prefix(directory: str) -> str:
    escaped = directory.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


def _scope(paths: list[str] | None, old: dict, result: ScanResult) -> set[str] | None:
    """What this read answers for. Paths under an unreadable directory, or moving under the
    hash, are left out: unread is not deleted."""
    if paths is None and not result.truncated and not result.errors and not result.changing:
        return None
    scope = set(result.states) if paths is None else event_scope([display_path(p) for p in paths], old, result.states)
    if paths is None and not result.truncated:
        scope |= set(old)
    # An unlistable directory was still stat'ed: its own mode is compared, what is under it is not.
    under = [b + "/" for b in result.errors]
    changing = set(result.changing)
    if under or changing:
        scope = {p for p in scope if p not in changing and not any(p.startswith(u) for u in under)}
    return scope


def run_scan(rt, watch_id: int, paths: list[str] | None = None, reason: str = "rescan",
             now: datetime | None = None) -> dict:
    # Asked before the scan's unit of work: the server connection takes a budget slot, a store write
    # that the embedded store would queue behind this scan's own write lock.
    settings = config_changes.server_settings(rt, watch_id) if paths is None or _names_config(paths) else None
    with _locks[watch_id], rt.store.session() as s:
        # A write first: it takes the row lock on PostgreSQL and the write lock on SQLite (whose driver
        # would otherwise run the reads below outside any transaction), so the baseline read next is
        # the one this scan's writes will replace.
        s.execute(update(FileWatch).where(FileWatch.id == watch_id).values(last_scan_at=now or utcnow()))
        watch = s.get(FileWatch, watch_id)
        if watch is None or watch.status == "removed":
            return {"watch_id": watch_id, "skipped": "no such watch"}
        if not watch.baseline_ready:
            paths = None  # a first scan reads everything
        spec = scan_spec(watch, rt.config.files)
        old, configs = _baseline(s, watch_id, paths)
        result = scan(spec, old) if paths is None else read_paths(spec, paths, old)
        now = now or utcnow()
        watch.last_scan_at = now
        if result.root_error is not None:
            return _unavailable(s, watch, result.root_error, now)
        first = not watch.baseline_ready
        if watch.status == "unavailable" and not first:
            record_event(s, type="file.watch_recovered", severity="info", asset_id=watch.asset_id,
                         summary=f"{watch.path} is readable again", payload={"watch_id": watch.id, "watch": watch.path})
        changes = compare(old, result.states, _scope(paths, old, result))
        if not _config_touched(watch, changes, paths is None):
            settings = None
        judged = []
        for change in changes:
            diff = None
            if "config" in watch.kinds and change.new is not None and change.new.type == "file" \
                    and change.type in ("created", "modified"):
                diff, configs[change.path] = config_changes.parse_and_diff(
                    rt, change.path, configs.get(change.path), settings)
            judged.append(judge(change, watch.kinds, diff))
        if first and "config" in watch.kinds:
            for path, state in result.states.items():
                if state.type == "file":
                    _, configs[path] = config_changes.parse_and_diff(rt, path, None, None)
        _store_baseline(s, watch_id, old, result, changes, configs, now)
        recorded = 0 if first else _record_changes(s, watch, judged, reason, now)
        _update_watch(s, watch, result, [] if first else changes, paths is None, now)
        if settings is not None:
            recorded += config_changes.pending_restart_events(s, watch, settings)
        out = {"watch_id": watch_id, "reason": reason, "first": first, "read": len(result.states),
               "changes": 0 if first else len(changes), "events": recorded, "errors": len(result.errors),
               "changing": len(result.changing), "truncated": result.truncated}
        if "backup" in watch.kinds:
            out["backups"] = backup_run.judge_backups(s, watch, result, now, first, [c.path for c in changes
                                                                                     if c.type in ("deleted", "moved")])
        _growth_sample(rt, s, watch, now)
    return out


def _names_config(paths: list[str]) -> bool:
    return any(guess_kind(p) for p in paths) or any(os.path.isdir(p) for p in paths)


def _config_touched(watch: FileWatch, changes, full: bool) -> bool:
    # A full rescan also asks: a setting starts waiting for a restart at the reload, not the edit.
    return "config" in watch.kinds and watch.source == "postgresql" and (full or any(
        c.type in ("created", "modified") for c in changes))


def _unavailable(s, watch: FileWatch, error: str, now: datetime) -> dict:
    # The baseline is kept: when the path is back, the next scan reports what changed meanwhile.
    if watch.status != "unavailable" and watch.baseline_ready:
        record_event(s, type="file.watch_unavailable", severity="warning", asset_id=watch.asset_id,
                     summary=f"{watch.path}: {error}", payload={"watch_id": watch.id, "watch": watch.path,
                                                               "error": error})
    watch.status, watch.status_detail, watch.updated_at = "unavailable", error, now
    return {"watch_id": watch.id, "unavailable": error}


def _store_baseline(s, watch_id: int, old: dict, result: ScanResult, changes, configs: dict, now) -> None:
    changed_paths = {c.path for c in changes} | {c.dest for c in changes if c.dest}
    rows = [{"watch_id": watch_id, "path_key": path_key(p), "path": p, "state": st.as_dict(),
             "config": configs.get(p), "updated_at": now}
            for p, st in result.states.items() if p not in old or p in changed_paths or old[p] != st]
    for i in range(0, len(rows), 2000):
        chunk = rows[i:i + 2000]
        insert = upsert_insert(s, FileEntry).values(chunk)
        s.execute(insert.on_conflict_do_update(index_elements=["watch_id", "path_key"], set_={
            "path": insert.excluded.path, "state": insert.excluded.state, "config": insert.excluded.config,
            "updated_at": insert.excluded.updated_at}))
    gone = [path_key(c.path) for c in changes if c.type in ("deleted", "moved")]
    for i in range(0, len(gone), 2000):
        s.execute(delete(FileEntry).where(FileEntry.watch_id == watch_id, FileEntry.path_key.in_(gone[i:i + 2000])))


def _record_changes(s, watch: FileWatch, judged: list[JudgedChange], reason: str, now: datetime) -> int:
    """Store and announce the changes the watch reports. The rest (a data file written, a WAL
    segment recycled) only moves the baseline: kept, they would be most of the store."""
    reported = [j for j in judged if wanted(j, (watch.spec or {}).get("events") or [])]
    if not reported:
        return 0
    rows = [{"watch_id": watch.id, "asset_id": watch.asset_id, "path": j.change.path, "type": j.type,
             "severity": j.severity, "fields": j.change.fields,
             "old": j.change.old.as_dict() if j.change.old else None,
             "new": j.change.new.as_dict() if j.change.new else None, "dest": j.change.dest, "diff": j.diff,
             "reason": reason, "observed_at": now} for j in reported]
    for i in range(0, len(rows), 2000):
        s.execute(insert(FileChange), rows[i:i + 2000])
    events = event_records(reported, watch.path, watch.id)
    for e in events:
        record_event(s, asset_id=watch.asset_id, observed_at=now, **e)
    watch.last_change_at = now
    return len(events)


def _size(state: FileState | None) -> int:
    return state.size if state is not None and state.type == "file" else 0


def _update_watch(s, watch: FileWatch, result: ScanResult, changes, full: bool, now) -> None:
    if full:
        watch.entries = len(result.states)
        watch.total_bytes = result.total_bytes
        watch.last_full_scan_at = now
        watch.errors = dict(list(result.errors.items())[:MAX_STORED_ERRORS])
    else:
        for c in changes:
            watch.entries += {"created": 1, "deleted": -1}.get(c.type, 0)
            watch.total_bytes += _size(c.new) - _size(c.old)
    if result.truncated:
        watch.status, watch.status_detail = "error", f"more than {len(result.states)} entries: only those are watched"
    elif watch.status != "ok":
        watch.status, watch.status_detail = "ok", None
    watch.baseline_ready = True
    watch.updated_at = now


def _growth_sample(rt, s, watch: FileWatch, now: datetime) -> None:
    if not any(k in GROWTH_KINDS for k in watch.kinds):
        return
    if watch.last_sample_at is not None and now - watch.last_sample_at < GROWTH_SAMPLE_EVERY:
        return
    from monitor_app.files.growth import write_growth

    write_growth(rt, s, watch, now)
    watch.last_sample_at = now
