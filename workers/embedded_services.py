"""The single-machine worker: Celery beat and the watcher run as threads of the worker process.

`dbmon up` without Redis starts one worker process (thread pool) that also schedules and
watches, instead of separate beat and watcher processes: the same behaviour for a fraction
of the memory. A file lock keeps two such workers on one data directory from both scheduling.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time

from celery.beat import EmbeddedService

from monitor_app.config.settings import Settings
from monitor_app.platform.heartbeat import touch

log = logging.getLogger("dbmon.embedded")


class EmbeddedServices:
    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.stopping = threading.Event()
        self.beat = None
        self.watcher = None
        self._lock_file = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.settings.data_dir / "beat.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.error("another dbmon schedules on %s; this worker only runs tasks", self.settings.data_dir)
            self._lock_file.close()
            self._lock_file = None
        else:
            self._start_beat()
        self._start_thread("watcher", self._run_watcher)
        self._start_thread("embedded-upkeep", self._upkeep)

    def _start_beat(self) -> None:
        self.beat = EmbeddedService(self.app, thread=True,
                                    schedule_filename=str((self.settings.data_dir / "beat-schedule").resolve()))
        self.beat.start()

    def _start_thread(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run_watcher(self) -> None:
        from monitor_app.platform.runtime import Runtime
        from workers.watcher import Watcher

        while not self.stopping.is_set():
            self.watcher = Watcher(Runtime(self.settings))
            try:
                self.watcher.run_forever()
            except Exception:  # noqa: BLE001 - the watcher thread must outlive any one failure
                log.exception("embedded watcher failed; restarting")
                self.stopping.wait(1.0)

    def _upkeep(self) -> None:
        # The standalone beat's heartbeat comes from its supervisor; here, from this loop.
        while not self.stopping.wait(2.0):
            if self.beat is None:
                continue
            if self.beat.is_alive():
                touch(self.settings, "beat")
            else:
                log.warning("embedded beat stopped; restarting")
                self._start_beat()

    def stop(self, timeout: float = 3.0) -> None:
        self.stopping.set()
        if self.watcher is not None:
            self.watcher.stopping.set()
        started = time.monotonic()
        if self.beat is not None:
            self.beat.stop()
        deadline = started + timeout  # one wait for all, not a timeout each
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        log.info("embedded beat and watcher stopped in %.1f s", time.monotonic() - started)
        if self._lock_file is not None:
            self._lock_file.close()
