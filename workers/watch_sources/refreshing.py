"""A watch source whose set of targets comes from the store and is re-read periodically,
so assets added by the config file or by discovery are picked up and removed ones let go."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("dbmon.watcher")

REFRESH_SECONDS = 30.0


class RefreshingSource:
    thread_name = "refreshing-source"
    refresh_seconds = REFRESH_SECONDS

    def __init__(self, runtime, emit):
        self.runtime, self.emit = runtime, emit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Set by a refresh that knows it will soon see more (e.g. limits not read yet).
        self.refresh_again_in: float | None = None

    def refresh(self) -> None:
        raise NotImplementedError

    def start_refreshing(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            wait, self.refresh_again_in = self.refresh_again_in or self.refresh_seconds, None
            if self._stop.wait(wait):
                break
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep the current targets; try again next round
                log.exception("%s: refreshing the targets failed", self.thread_name)

    def stop_refreshing(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
