"""The shared test deployment (tests/harness.py) with what container monitoring needs:
a discovery worker, the watcher's docker source, beat, and the store."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.harness import Deployment as _Deployment
from tests.harness import wait_for

READY = "following docker events"


class Deployment(_Deployment):
    def __init__(self, tmp: Path, config: str = "", mode: str = "embedded"):
        super().__init__(mode, tmp, extra_env={"DBMON_FILESYSTEM_POLLING_INTERVAL": "0.02"})
        self.write_config(config)
        self.migrate()

    @property
    def store(self):
        return self.runtime.store

    def start_worker(self, name: str = "worker", *extra: str) -> subprocess.Popen:
        return super().start_worker(name, "-Q", "discovery", "-c", "2", *extra)

    def start_beat(self) -> None:
        self.start("beat", "beat")

    def start_watcher(self) -> None:
        """Start (or restart) the watcher and wait until it follows the engine."""
        seen = self.log("watcher").count(READY)
        proc = self.start("watcher", "watcher", "--source", "docker")
        wait_for(lambda: self.log("watcher").count(READY) > seen or proc.poll() is not None, 60, what="watcher")
        assert proc.poll() is None, self.log("watcher")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.kill(name, sig)
