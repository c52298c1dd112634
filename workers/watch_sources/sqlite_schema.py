"""Watch SQLite asset files; a write whose `PRAGMA schema_version` moved starts a schema check.

Data writes also touch the file, so the version is the filter: only a schema change (or a
VACUUM, which the content diff then reports as nothing) reaches the queue.

What the source keeps follows the assets: a removed asset's version and a directory no asset
lives in any more are let go at the next refresh. Each watched directory costs an inotify
instance and a thread (watchdog's emitter), and the kernel allows 128 instances per user by
default, so at most `MAX_WATCHED_DIRECTORIES` directories are watched; SQLite assets in further
directories are covered by their scheduled checks, and a warning says how many.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import select
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from monitor_app.errors import DbmonError
from monitor_app.schema.sqlite_snapshot import schema_version
from monitor_app.store.models import Asset
from workers.watch_sources.refreshing import RefreshingSource

log = logging.getLogger("dbmon.watcher.sqlite_schema")
SUFFIXES = ("", "-wal", "-journal")
MAX_WATCHED_DIRECTORIES = 64


class SqliteSchemaSource(RefreshingSource, FileSystemEventHandler):
    thread_name = "sqlite-schema-source"

    def __init__(self, runtime, emit):
        super().__init__(runtime, emit)
        self.files: dict[str, int] = {}  # resolved db path -> asset id
        self.versions: dict[str, int | None] = {}
        self._observer: Observer | None = None
        self._watches: dict[str, object] = {}  # directory -> watchdog's ObservedWatch
        self.unwatched_directories = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._observer = Observer()
        self._observer.start()
        self.start_refreshing()

    def refresh(self) -> None:
        with self.runtime.store.session() as s:
            rows = s.execute(select(Asset.id, Asset.connection).where(
                Asset.engine == "sqlite", Asset.status != "gone")).all()
        files = {str(Path(conn["path"]).resolve()): asset_id for asset_id, conn in rows if conn.get("path")}
        known = dict(self.versions)
        versions = {path: known[path] if path in known else self._version(path) for path in files}
        with self._lock:
            self.versions, self.files = versions, files
        self._watch_directories({str(Path(p).parent) for p in files})

    def _watch_directories(self, wanted: set[str]) -> None:
        for directory in [d for d in self._watches if d not in wanted]:
            self._observer.unschedule(self._watches.pop(directory))
        missing = [d for d in sorted(wanted) if d not in self._watches and Path(d).is_dir()]
        room = max(0, MAX_WATCHED_DIRECTORIES - len(self._watches))
        for directory in missing[:room]:
            try:
                self._watches[directory] = self._observer.schedule(self, directory, recursive=False)
            except OSError as exc:  # the user's inotify instances or watches are used up elsewhere
                log.warning("cannot watch %s (%s); its SQLite assets get their scheduled checks only", directory, exc)
        unwatched = len([d for d in missing if d not in self._watches])
        if unwatched and unwatched != self.unwatched_directories:
            log.warning("%d directories holding SQLite assets are beyond the %d watched; their assets get "
                        "their scheduled checks only", unwatched, MAX_WATCHED_DIRECTORIES)
        self.unwatched_directories = unwatched

    @staticmethod
    def _version(path: str) -> int | None:
        try:
            return schema_version(path)
        except DbmonError:
            return None

    def on_any_event(self, event) -> None:
        if event.event_type not in ("modified", "created", "moved", "closed"):
            return
        for raw in (getattr(event, "src_path", None), getattr(event, "dest_path", None)):
            if raw:
                self._maybe_changed(str(raw))

    def _maybe_changed(self, raw: str) -> None:
        for suffix in SUFFIXES:
            if suffix and not raw.endswith(suffix):
                continue
            path = str(Path(raw[: len(raw) - len(suffix)] if suffix else raw).resolve())
            asset_id = self.files.get(path)
            if asset_id is None:
                continue
            version = self._version(path)
            with self._lock:
                if version is None or version == self.versions.get(path):
                    return
                previous, self.versions[path] = self.versions.get(path), version
            self.emit("schema.check", {"asset_id": asset_id, "context": {
                "source": "file", "schema_version": version, "previous_schema_version": previous}})
            return

    def stop(self) -> None:
        self.stop_refreshing()
        if self._observer:
            self._observer.stop()
            self._observer.join(timeout=5)
