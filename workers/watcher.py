"""The watcher process: hosts the event sources and restarts any that crash."""

from __future__ import annotations

import importlib
import logging
import threading
import time

from monitor_app.platform.heartbeat import touch
from monitor_app.platform.runtime import Runtime
from workers.watch_sources import SOURCES

log = logging.getLogger("dbmon.watcher")


def load_source(path: str):
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


class Watcher:
    def __init__(self, runtime: Runtime, kinds: list[str] | None = None):
        self.runtime = runtime
        self.kinds = kinds or list(SOURCES)
        self.sources: dict[str, object] = {}
        self.stopping = threading.Event()

    def emit(self, task_name: str, kwargs: dict) -> str:
        return self.runtime.dispatch(task_name, kwargs, requested_by="watcher")

    def start(self) -> None:
        for kind in self.kinds:
            cls = load_source(SOURCES[kind])
            wanted = getattr(cls, "wanted", None)
            if wanted is not None and not wanted(self.runtime):
                log.info("watch source %s has nothing to watch; not started", kind)
                continue
            self._start_one(kind, cls)

    def _start_one(self, kind: str, cls) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                source = cls(self.runtime, self.emit)
                source.start()
                self.sources[kind] = source
                log.info("watch source %s started", kind)
                return
            except Exception:  # noqa: BLE001 - one broken source must not stop the others
                log.exception("watch source %s failed to start; retrying in %.0fs", kind, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 60)

    def run_forever(self) -> None:
        self.start()
        while not self.stopping.wait(1.0):
            touch(self.runtime.settings, "watcher")
            for kind, source in list(self.sources.items()):
                alive = getattr(source, "is_alive", None)
                if alive is not None and not alive():
                    log.warning("watch source %s stopped; restarting", kind)
                    self.sources.pop(kind)
                    self._start_one(kind, type(source))
        self.stop()

    def stop(self, timeout: float = 4.0) -> None:
        """Stop every source at once: shutdown waits for the slowest source, not for their sum."""
        self.stopping.set()
        stoppers = [threading.Thread(target=self._stop_one, args=(kind, source), name=f"stop-{kind}", daemon=True)
                    for kind, source in self.sources.items()]
        for thread in stoppers:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in stoppers:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.sources.clear()

    @staticmethod
    def _stop_one(kind: str, source) -> None:
        try:
            source.stop()
        except Exception:  # noqa: BLE001
            log.exception("watch source %s did not stop cleanly", kind)

