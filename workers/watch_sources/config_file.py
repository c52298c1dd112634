"""Re-sync assets as soon as the config file is saved, if it is still valid."""

from __future__ import annotations

import logging
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from monitor_app.access import audit
from monitor_app.config.declarative import load_config
from monitor_app.errors import ConfigError

log = logging.getLogger("dbmon.watcher.config")


class ConfigFileSource(FileSystemEventHandler):
    def __init__(self, runtime, emit):
        self.runtime, self.emit = runtime, emit
        self.path = Path(runtime.settings.config_file).resolve()
        self._observer: Observer | None = None
        self._rejected_version: tuple | None = None

    @classmethod
    def wanted(cls, runtime) -> bool:
        return Path(runtime.settings.config_file).resolve().parent.is_dir()

    def start(self) -> None:
        self._observer = Observer()
        # Editors replace files by rename, so watch the directory, not the file.
        self._observer.schedule(self, str(self.path.parent), recursive=False)
        self._observer.start()
        # A watcher started on its own (compose, scale-out) must not wait for the next edit or the
        # periodic sync to load the assets the file already declares.
        self.emit("assets.sync_config", {})

    def stop(self) -> None:
        if self._observer:
            self._observer.stop()
            self._observer.join(timeout=5)

    def on_any_event(self, event) -> None:
        paths = {getattr(event, "src_path", None), getattr(event, "dest_path", None)}
        if str(self.path) not in {str(Path(p).resolve()) for p in paths if p}:
            return
        if event.event_type not in ("modified", "created", "moved", "closed"):
            return
        try:
            load_config(self.path)
        except ConfigError as exc:
            log.error("config file changed but is invalid, keeping the last good one: %s", exc)
            self._audit_rejected(exc)
            return
        self.emit("assets.sync_config", {})

    def _audit_rejected(self, exc: ConfigError) -> None:
        # One save fires several file events (modified, closed): record each rejected version once.
        try:
            st = self.path.stat()
            version = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            version = None
        if version is not None and version == self._rejected_version:
            return
        self._rejected_version = version
        try:
            audit.record_now(self.runtime.store, actor="watcher", action="config.reload", target=str(self.path),
                             outcome="invalid", detail={"errors": [f"{p}: {m}" for p, m in exc.errors][:50]})
        except Exception:  # noqa: BLE001 - the watcher keeps watching; the log above has the reason
            log.exception("could not record the rejected config file in the audit trail")
