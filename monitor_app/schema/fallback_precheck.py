"""Pre-checks for the databases of a server that get no LISTEN connection.

One thread per server walks its databases in turn through one budgeted slot: connect, read the
cheap catalogue marker (`precheck.postgres_marker`), disconnect. A marker that differs from the
one last seen asks for the normal schema check (`on_change(asset_id)`); the check decides
whether anything changed. A round starts at most every `interval` seconds; with many databases
a round simply takes longer. The slot is given back every `HOLD_SECONDS` for a little longer than a waiter's poll,
so a check waiting for the same server (one a notification asked for, say) gets it within
about half a second instead of after the round.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import psycopg2

from monitor_app.assets.connection_budget import BudgetExhausted, ConnectionBudget, Lease, close_fully
from monitor_app.schema import precheck
from monitor_app.schema.catalogue_session import catalogue_first
from monitor_app.schema.listen_budget import Target

log = logging.getLogger("dbmon.schema.fallback")
HOLD_SECONDS = 0.25
# After giving the slot back, longer than a waiter's poll (MAX_POLL_SECONDS): a waiting check gets it.
YIELD_SECONDS = 0.3
PURPOSE = "fallback pre-check"


class FallbackPrecheck:
    def __init__(self, server: str, budget: ConnectionBudget, on_change: Callable[[int], None], *,
                 interval: float, known_marker: Callable[[int], str | None], connect_timeout: float = 5.0):
        self.server, self.budget, self.on_change = server, budget, on_change
        self.interval, self.known_marker, self.connect_timeout = interval, known_marker, connect_timeout
        self.targets: list[Target] = []
        self.seen: dict[int, str] = {}
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def set_targets(self, targets: list[Target]) -> None:
        with self._lock:
            self.targets = list(targets)
            keep = {t.asset_id for t in targets}
            # A database that was listened on meanwhile starts again from the stored marker.
            self.seen = {k: v for k, v in self.seen.items() if k in keep}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"schema-fallback-{self.server}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        if self._thread:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_round()
            except Exception:  # noqa: BLE001 - nothing a server sends may end the thread
                log.exception("%s: a fallback pre-check round failed", self.server)
            self._stop.wait(max(0.05, self.interval - (time.monotonic() - started)))

    def run_round(self) -> int:
        """One pass over the targets; returns how many changes it asked checks for."""
        with self._lock:
            targets = list(self.targets)
        changed, lease, held_since = 0, None, 0.0
        try:
            for target in targets:
                if self._stop.is_set():
                    break
                if lease is not None and (lease.lost.is_set() or time.monotonic() - held_since > HOLD_SECONDS):
                    self.budget.release(lease)
                    lease = None
                    self._stop.wait(YIELD_SECONDS)
                if lease is None:
                    try:
                        lease = self.budget.acquire(self.server, PURPOSE, wait=self.interval, stop=self._stop)
                    except BudgetExhausted:
                        return changed  # checks hold every slot, or the server is backed off: next round
                    held_since = time.monotonic()
                changed += self._check(target, lease)
        finally:
            if lease is not None:
                self.budget.release(lease)
            self.rounds += 1
        return changed

    def _check(self, target: Target, lease: Lease) -> int:
        def connect():
            conn = psycopg2.connect(target.dsn, connect_timeout=max(1, int(self.connect_timeout)),
                                    application_name="dbmon-precheck")
            conn.autocommit = True
            catalogue_first(conn)  # the marker query names no schema; nobody's functions may shadow it
            return conn

        try:
            conn = self.budget.open(self.server, PURPOSE, connect, lease)
        except Exception as exc:  # noqa: BLE001 - an unreachable database is the scheduled check's to report
            log.debug("%s: pre-check of asset %s could not connect: %s", self.server, target.asset_id, exc)
            return 0
        try:
            marker = precheck.postgres_marker(conn)
        except psycopg2.Error as exc:
            log.debug("%s: pre-check of asset %s failed: %s", self.server, target.asset_id, exc)
            return 0
        finally:
            close_fully(conn)
        previous = self.seen.get(target.asset_id) or self.known_marker(target.asset_id)
        self.seen[target.asset_id] = marker
        if previous is None or marker == previous:
            return 0  # no baseline yet: the scheduled check takes the first one
        self.on_change(target.asset_id)
        return 1
