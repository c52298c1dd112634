"""The watcher process: hosts the event sources and restarts any that crash.

Several watchers may run (one per machine, or a spare): only the holder of the watcher lease
(platform/leader_lease.py) runs the sources, so no event is pushed twice. The others wait as
standbys and take over within the lease's time to live when the leader dies."""

from __future__ import annotations

import importlib
import logging
import threading
import time

from monitor_app.platform.heartbeat import touch
from monitor_app.platform.leader_lease import Lease, lease_for
from monitor_app.platform.runtime import Runtime
from monitor_app.selfmon.watcher_report import WatcherReporter
from workers.watch_sources import SOURCES

log = logging.getLogger("dbmon.watcher")


def load_source(path: str):
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


class Watcher:
    def __init__(self, runtime: Runtime, kinds: list[str] | None = None, lease: Lease | None = None):
        self.runtime = runtime
        self.kinds = kinds or list(SOURCES)
        self.sources: dict[str, object] = {}
        self.stopping = threading.Event()
        self.lease = lease or lease_for(runtime.settings, "watcher")
        self.leading = threading.Event()
        self._renew_every = min(1.0, runtime.settings.leader_lease_seconds / 3)
        self._keeper = threading.Thread(target=self._keep_lease, name="watcher-lease", daemon=True)
        self.selfmon = WatcherReporter(runtime, period=self._renew_every)  # its and its sources' rows in the store

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
        while not self.stopping.is_set() and self.leading.is_set():
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
        if self.lease.hold():
            self.leading.set()  # a lone watcher starts its sources at once, not a renewal later
        self._keeper.start()
        running = False
        period = 0.0
        while not self.stopping.wait(period):
            period = self._renew_every
            if self.leading.is_set() and not running:
                log.info("watcher %s leads: starting the watch sources", self.lease.holder)
                self.start()
                running = True
            elif not self.leading.is_set() and running:
                log.warning("watcher %s lost the lease: stopping the watch sources", self.lease.holder)
                self._stop_sources()
                running = False
            elif running:
                self._restart_dead_sources()
            # Touched once the sources started: a fresh heartbeat means watching (or standing by).
            touch(self.runtime.settings, "watcher")
            self.selfmon.report(self)
        self.stop()

    def _keep_lease(self) -> None:
        # Its own thread: a source that is slow to start must not delay the renewal past the TTL.
        announced = False
        while not self.stopping.is_set():
            if self.lease.hold() and not self.stopping.is_set():
                self.leading.set()
            else:
                self.leading.clear()
                if not announced:
                    log.info("watcher %s is a standby: another watcher holds the lease", self.lease.holder)
                    announced = True
            self.stopping.wait(self._renew_every)
        self.leading.clear()

    def _restart_dead_sources(self) -> None:
        for kind, source in list(self.sources.items()):
            alive = getattr(source, "is_alive", None)
            if alive is not None and not alive():
                log.warning("watch source %s stopped; restarting", kind)
                self.sources.pop(kind)
                self._start_one(kind, type(source))

    def stop(self, timeout: float = 4.0) -> None:
        self.stopping.set()
        self._stop_sources(timeout)
        if self._keeper.is_alive():
            self._keeper.join(timeout=timeout)  # no renewal may follow the release
        self.leading.clear()
        self.lease.release()  # a standby takes over now, not when the lease expires

    def _stop_sources(self, timeout: float = 4.0) -> None:
        """Stop every source at once: shutdown waits for the slowest source, not for their sum."""
        stoppers = [threading.Thread(target=self._stop_one, args=(kind, source), name=f"stop-{kind}", daemon=True)
                    for kind, source in self.sources.items()]
        for thread in stoppers:
            thread.start()
        started = time.monotonic()
        deadline = started + timeout
        for thread in stoppers:
            thread.join(max(0.0, deadline - time.monotonic()))
        late = [thread.name for thread in stoppers if thread.is_alive()]
        log.info("watch sources stopped in %.1f s%s", time.monotonic() - started,
                 f"; still stopping: {', '.join(late)}" if late else "")
        self.sources.clear()

    @staticmethod
    def _stop_one(kind: str, source) -> None:
        started = time.monotonic()
        try:
            source.stop()
        except Exception:  # noqa: BLE001
            log.exception("watch source %s did not stop cleanly", kind)
        if time.monotonic() - started > 1.0:
            log.warning("watch source %s took %.1f s to stop", kind, time.monotonic() - started)

