"""Watch SQLite asset files; a write whose `PRAGMA schema_version` moved starts a schema check.

Data writes also touch the file, so the version is the filter: only a schema change (or a
VACUUM, which the content diff then reports as nothing) reaches the queue.
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


class SqliteSchemaSource(RefreshingSource, FileSystemEventHandler):
    thread_name = "sqlite-schema-source"

    def __init__(self, runtime, emit):
        super().__init__(runtime, emit)
        self.files: dict[str, int] = {}  # resolved db path -> asset id
        self.versions: dict[str, int | None] = {}
        self._observer: Observer | None = None
        self._watched_dirs: set[str] = set()
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
        with self._lock:
            for path in files:
                if path not in self.versions:
                    self.versions[path] = self._version(path)
            self.files = files
        for directory in {str(Path(p).parent) for p in files} - self._watched_dirs:
            if Path(directory).is_dir():
                self._observer.schedule(self, directory, recursive=False)
                self._watched_dirs.add(directory)

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
