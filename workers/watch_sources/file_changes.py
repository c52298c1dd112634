"""Watch the stored file watches with inotify (watchdog) and push what moved as `files.scan` tasks.

Events are coalesced per watch for `FLUSH_SECONDS`: a burst of writes is one task naming the
paths, and a burst past `MAX_PATHS` is one full rescan. inotify is not trusted to be complete,
so a full rescan is also pushed when the kernel's queue overflowed, when this source starts
(whatever happened while no watcher ran), and when a path that could not be watched becomes
watchable. The periodic rescan (beat) is the net under all of it.

A watch that reports no content change (a data directory, WAL: permissions only) asks the
kernel for no writes either (inotify_masks): a busy database's writes never reach the process. Its
scans then follow creates, deletes, renames and attribute changes, and the periodic rescan.

A path the watch's globs leave out (a data directory's relation files) is dropped as its event
arrives, by the scan's own matcher: it would be dropped by the scan anyway, and counted here it
would turn a busy server's writes into bursts and full rescans.

A single file is watched through its directory: editors and config tools replace files by rename.
A path whose name is not valid UTF-8 is sent as its directory, which the scan lists itself (the
ledger stores task arguments as JSON, which cannot carry such a name).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import select
from watchdog.events import FileSystemEventHandler
from watchdog.observers.api import ObservedWatch

from monitor_app.files.tree_scan import ScanSpec
from monitor_app.store.models.files import FileWatch
from workers.watch_sources.inotify_masks import MaskedObserver
from workers.watch_sources.refreshing import RefreshingSource

log = logging.getLogger("dbmon.watcher.files")
FLUSH_SECONDS = 0.15
# A watch that reports only permissions (a data directory, WAL) is written to all day; its events
# are gathered for longer, so a busy database is a scan a second, not seven.
QUIET_FLUSH_SECONDS = 1.0
CONTENT_EVENTS = {"created", "modified", "deleted", "moved"}
# A full rescan reads the whole tree: during a burst, at most one per watch this often (the last
# one is sent when the spacing has passed, so the burst's end is always read).
FULL_RESCAN_SPACING = 5.0
MAX_PATHS = 500
REFRESH_SECONDS = 15.0
OVERFLOW_LOGGER = "watchdog.observers.inotify_c"
_Pair = tuple[str, bool, bool]


class _OverflowSignal(logging.Handler):
    """watchdog reports a kernel queue overflow only as a log record (no callback reaches a
    handler), so the record is the signal."""

    def __init__(self, on_overflow):
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()


class _Root:
    def __init__(self, watch_id: int, path: str, spec: dict):
        self.watch_id, self.path, self.spec = watch_id, path.rstrip("/") or "/", spec
        self.recursive = bool(spec.get("recursive", True))
        events = spec.get("events")
        # Quiet: no event it reports follows a write, so it is not sent writes at all.
        self.quiet = not CONTENT_EVENTS & set(events or CONTENT_EVENTS)
        self.flush_every = QUIET_FLUSH_SECONDS if self.quiet else FLUSH_SECONDS
        self.is_file = not os.path.isdir(path)
        # A file is watched through its directory.
        self.directory = os.path.dirname(self.path) if self.is_file else self.path
        self.matcher = ScanSpec.of_watch(self.path, spec).matcher()

    def covers(self, path: str) -> bool:
        if self.is_file:
            return path == self.path
        if path == self.path:
            return True
        if not path.startswith(self.path + "/"):
            return False
        return self.recursive or "/" not in path[len(self.path) + 1:]

    def leaves_out(self, path: str, is_dir: bool) -> bool:
        """Whether a covered path is one the watch's scan would never read (excluded, under an
        excluded directory, or a file its include globs do not pick)."""
        if path == self.path:
            return False
        return not self.matcher.reached(path[len(self.path) + 1:], is_dir)


class FileChangesSource(RefreshingSource, FileSystemEventHandler):
    thread_name = "file-changes-source"
    refresh_seconds = REFRESH_SECONDS

    def __init__(self, runtime, emit):
        super().__init__(runtime, emit)
        self.roots: dict[int, _Root] = {}
        self._scheduled: dict[int, _Pair] = {}  # watch id -> its inotify (directory, recursive, quiet)
        # One inotify watch per (directory, recursive, quiet), shared by the watches under it: watchdog
        # hands back the same watch for the same directory and recursion, and unscheduling it ends it for all.
        self._inotify: dict[_Pair, tuple[ObservedWatch, set[int]]] = {}
        self._pending: dict[int, set[str] | None] = {}  # None: a full rescan
        self._full_reason: dict[int, str] = {}  # why a full rescan is pending: start, appeared, burst, overflow
        self._last_full: dict[int, float] = {}
        self._lock = threading.Lock()
        self._observers: dict[bool, MaskedObserver] = {}  # quiet -> the observer asking for its mask
        self._flusher: threading.Thread | None = None
        self._overflow = _OverflowSignal(self._on_overflow)
        self.overflows = 0
        self.events_received = 0
        self.paths_left_out = 0  # (path, watch) pairs of events that a watch's globs leave out
        self._first_refresh_done = False
        self._last_flush: dict[int, float] = {}

    def start(self) -> None:
        logging.getLogger(OVERFLOW_LOGGER).addHandler(self._overflow)
        self.start_refreshing()
        self._flusher = threading.Thread(target=self._flush_loop, name="file-changes-flush", daemon=True)
        self._flusher.start()

    def refresh(self) -> None:
        with self.runtime.store.session() as s:
            rows = s.execute(select(FileWatch.id, FileWatch.path, FileWatch.spec, FileWatch.baseline_ready)
                             .where(FileWatch.status != "removed")).all()
        wanted = {r.id: r for r in rows}
        for watch_id in [w for w in self._scheduled if w not in wanted]:
            self._unschedule(watch_id)
        for watch_id, row in wanted.items():
            if watch_id in self._scheduled:
                if self.roots[watch_id].spec == (row.spec or {}):
                    continue
                # Its globs (and recursion) decide which events count: a changed spec is watched anew.
                self._unschedule(watch_id)
            root = _Root(watch_id, row.path, row.spec or {})
            if not os.path.lexists(row.path) or not os.path.isdir(root.directory):
                continue  # unavailable: the scan says so; retried at the next refresh
            pair = (root.directory, root.recursive and not root.is_file, root.quiet)
            if pair not in self._inotify:
                try:
                    self._inotify[pair] = (self._observer(root.quiet).schedule(self, pair[0], recursive=pair[1]),
                                           set())
                except OSError as exc:
                    log.warning("cannot watch %s (%s); it gets its periodic rescans only", row.path, exc)
                    continue
            self._inotify[pair][1].add(watch_id)
            self._scheduled[watch_id] = pair
            with self._lock:
                self.roots[watch_id] = root
                # First sight (watcher start, or the path just became watchable): whatever happened
                # while nobody watched is found by reading it all. A new watch is baselined by its sync.
                if row.baseline_ready:
                    self._want_full(watch_id, "appeared" if self._first_refresh_done else "start")
        self._first_refresh_done = True

    def _observer(self, quiet: bool) -> MaskedObserver:
        """Started at first need: each is an inotify instance, of which a user has 128 by default."""
        if quiet not in self._observers:
            observer = MaskedObserver(quiet=quiet)
            observer.start()
            self._observers[quiet] = observer
        return self._observers[quiet]

    def _unschedule(self, watch_id: int) -> None:
        pair = self._scheduled.pop(watch_id)
        with self._lock:
            self.roots.pop(watch_id, None)
            self._pending.pop(watch_id, None)
            self._full_reason.pop(watch_id, None)
        observed, users = self._inotify[pair]
        users.discard(watch_id)
        if users:
            return
        del self._inotify[pair]
        try:
            self._observers[pair[2]].unschedule(observed)
        except (KeyError, OSError):
            pass

    def on_any_event(self, event) -> None:
        with self._lock:  # each observer dispatches from its own thread
            self._on_event(event)

    def _on_event(self, event) -> None:
        self.events_received += 1
        if event.event_type in ("opened", "closed_no_write"):
            return
        # watchdog adds a "modified" event of the parent directory to every create, delete, move and
        # write; the entry's own event says what happened, and reading a large parent's whole
        # listing for each would make every event scan as slow as a full one. A directory's own mode
        # or owner change arrives as "attrib".
        if event.is_directory and event.event_type == "modified":
            return
        full = event.is_directory and event.event_type == "moved"  # a tree moved in: its contents are unseen
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = os.fsdecode(raw)
            for root in self.roots.values():
                if not root.covers(path):
                    continue
                if root.leaves_out(path, event.is_directory):
                    self.paths_left_out += 1
                else:
                    self._add(root, path, full)

    def _want_full(self, watch_id: int, reason: str) -> None:
        """Under the lock: a full rescan of the watch replaces whatever paths were pending."""
        self._pending[watch_id] = None
        self._full_reason.setdefault(watch_id, reason)

    def _add(self, root: _Root, path: str, full: bool) -> None:
        pending = self._pending.get(root.watch_id, set())
        if pending is None:
            return
        if full or len(pending) >= MAX_PATHS:
            self._want_full(root.watch_id, "burst")
            return
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            path = os.path.dirname(path)
        pending.add(path)
        self._pending[root.watch_id] = pending

    def _on_overflow(self) -> None:
        with self._lock:
            for watch_id in self.roots:
                self._want_full(watch_id, "overflow")
        self.overflows += 1

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the batch is put back and tried again
                log.exception("pushing file changes failed; retrying")

    def flush(self, everything: bool = False) -> int:
        now = time.monotonic()
        with self._lock:
            due = [w for w, paths in self._pending.items() if everything or w not in self.roots or (
                now - self._last_flush.get(w, 0.0) >= self.roots[w].flush_every
                and (paths is not None or now - self._last_full.get(w, -FULL_RESCAN_SPACING) >= FULL_RESCAN_SPACING))]
            batch = {w: (self._pending.pop(w), self._full_reason.pop(w, "rescan")) for w in due}
            for w in due:
                self._last_flush[w] = now
                if batch[w][0] is None:
                    self._last_full[w] = now
        sent = 0
        try:
            for watch_id, (paths, reason) in list(batch.items()):
                if paths is None:
                    self.emit("files.scan", {"watch_id": watch_id, "reason": reason})
                else:
                    self.emit("files.scan", {"watch_id": watch_id, "paths": sorted(paths), "reason": "event"})
                batch.pop(watch_id)
                sent += 1
        finally:
            if batch:
                with self._lock:
                    for watch_id, (paths, reason) in batch.items():
                        if paths is None:
                            self._want_full(watch_id, reason)
                        elif (pending := self._pending.get(watch_id, set())) is not None:
                            self._pending[watch_id] = pending | paths
        return sent

    def is_alive(self) -> bool:
        return super().is_alive() and self._flusher is not None and self._flusher.is_alive()

    def stop(self) -> None:
        self.stop_refreshing()
        logging.getLogger(OVERFLOW_LOGGER).removeHandler(self._overflow)
        if self._flusher:
            self._flusher.join(timeout=2)
        try:
            self.flush(everything=True)  # what was seen before the stop is pushed, not dropped
        except Exception:  # noqa: BLE001
            log.exception("could not push the last file changes")
        for observer in self._observers.values():
            observer.stop()
        for observer in self._observers.values():
            observer.join(timeout=5)
