"""Docker engine events -> `containers.handle_event` tasks (ids and event data only)."""

from __future__ import annotations

import logging
import os
import threading

from monitor_app.containers.event_stream import CursorStore, EventFollower
from monitor_app.containers.inventory import connect

log = logging.getLogger("dbmon.watcher.docker")


class DockerEventsSource:
    def __init__(self, runtime, emit):
        self.runtime, self.emit = runtime, emit
        self.config = runtime.config.containers
        self.follower = EventFollower(lambda: connect(self.config.docker_url), CursorStore(runtime.store),
                                      on_event=self._on_event, on_resync=self._on_resync)
        self._thread: threading.Thread | None = None

    @classmethod
    def wanted(cls, runtime) -> bool:
        cfg = runtime.config.containers
        if not cfg.enabled:
            return False
        # No engine configured or installed here: nothing to follow (a configured one that is down is retried).
        return bool(cfg.docker_url or os.environ.get("DOCKER_HOST") or os.path.exists("/var/run/docker.sock"))

    def _on_event(self, kwargs: dict) -> None:
        # The ledger row is written before this returns, so the cursor only moves past a stored task.
        self.emit("containers.handle_event", kwargs)

    def _on_resync(self) -> None:
        self.emit("containers.reconcile", {})

    def start(self) -> None:
        self._thread = self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
