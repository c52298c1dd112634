"""`dbmon up`: keep worker, beat, watcher and API running as child processes.

A child that exits is restarted with a growing delay; SIGINT or SIGTERM stops
all of them, politely first (SIGTERM lets the worker finish its tasks), then
with SIGKILL for any that outlive the grace period.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("dbmon.supervisor")


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = 1.0
    restarts: int = 0
    next_start: float = field(default=0.0)


class Supervisor:
    def __init__(self, children: dict[str, list[str]], *, grace: float = 20.0, env: dict | None = None,
                 max_delay: float = 10.0, on_all_running=None):
        self.children = [Child(name, argv) for name, argv in children.items()]
        self.grace = grace
        # Short enough that a child waiting out a broker outage is back within seconds of its return.
        self.max_delay = max_delay
        self.env = env
        # Called every loop while every child runs: how `dbmon beat` keeps its heartbeat file fresh.
        self.on_all_running = on_all_running
        self.stopping = threading.Event()

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, env=self.env)
        child.started_at = time.monotonic()
        log.info("started %s (pid %s)", child.name, child.process.pid)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: self.stopping.set())

    def run(self) -> int:
        for child in self.children:
            self._spawn(child)
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    code = child.process.returncode
                    # A child that ran for a minute was healthy: start its back-off afresh.
                    child.delay = 1.0 if now - child.started_at > 60 else min(child.delay * 2, self.max_delay)
                    child.next_start = now + child.delay
                    child.process = None
                    child.restarts += 1
                    log.warning("%s exited with %s; restarting in %.0fs", child.name, code, child.delay)
                elif child.process is None and now >= child.next_start:
                    self._spawn(child)
            if self.on_all_running and all(c.process is not None for c in self.children):
                self.on_all_running()
        return self.shutdown()

    def shutdown(self) -> int:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing", child.name, self.grace)
                child.process.kill()
                child.process.wait()
        log.info("all processes stopped")
        return 0
