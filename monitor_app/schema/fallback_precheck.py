"""Pre-checks for the databases of a server that get no LISTEN connection.

One thread per server, one budgeted slot. A round first reads every database's row-write
counters through one connection (`write_counters`); only a database whose counters moved since
it was last pre-checked is then connected to, its cheap catalogue marker
(`precheck.postgres_marker`) read, and disconnected. A marker that differs from the one last
seen asks for the normal schema check (`on_change(asset_id)`); the check decides whether
anything changed. So a round over a thousand idle databases is one connection, not a thousand.
Besides, each round pre-checks a share of the databases least recently pre-checked, so every
one is checked directly at least every `sweep_seconds` whatever the counters say; a server
that does not count row writes (`track_counts = off`) has all of them walked every round.

A round starts at most every `interval` seconds. The slot is given back every `HOLD_SECONDS`
for a little longer than a waiter's poll, so a check waiting for the same server (one a
notification asked for, say) gets it within about half a second instead of after the round.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

import psycopg2
from psycopg2.extensions import parse_dsn

from monitor_app.assets.connection_budget import BudgetExhausted, ConnectionBudget, Lease, close_fully
from monitor_app.schema import precheck, write_counters
from monitor_app.schema.catalogue_session import catalogue_first
from monitor_app.schema.listen_budget import Target

log = logging.getLogger("dbmon.schema.fallback")
HOLD_SECONDS = 0.25
# After giving the slot back, longer than a waiter's poll (MAX_POLL_SECONDS): a waiting check gets it.
YIELD_SECONDS = 0.3
PURPOSE = "fallback pre-check"
# Every database is pre-checked directly at least this often, whether its counters moved or not.
SWEEP_SECONDS = 300.0
# Databases tried in turn for the one connection that reads the counters.
COUNTER_SOURCES_TRIED = 3


def database_of(target: Target) -> str:
    try:
        return parse_dsn(target.dsn).get("dbname") or ""
    except psycopg2.ProgrammingError:
        return ""


class FallbackPrecheck:
    def __init__(self, server: str, budget: ConnectionBudget, on_change: Callable[[int], None], *,
                 interval: float, known_marker: Callable[[int], str | None], connect_timeout: float = 5.0,
                 sweep_seconds: float = SWEEP_SECONDS):
        self.server, self.budget, self.on_change = server, budget, on_change
        self.interval, self.known_marker, self.connect_timeout = interval, known_marker, connect_timeout
        self.sweep_seconds = sweep_seconds
        self.targets: list[Target] = []
        self.databases: dict[int, str] = {}
        # Per asset, all bounded by the targets: last marker, counters when last pre-checked, when.
        self.seen: dict[int, str] = {}
        self.counted: dict[int, int] = {}
        self.checked_at: dict[int, float] = {}
        self.rounds = 0
        self.direct_checks = 0  # connections made to pre-check a database (not to read counters)
        self._lease: Lease | None = None
        self._held_since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def set_targets(self, targets: list[Target]) -> None:
        with self._lock:
            self.targets = list(targets)
            self.databases = {t.asset_id: database_of(t) for t in targets}
            keep = set(self.databases)
            # A database that was listened on meanwhile starts again from the stored marker.
            self.seen = {k: v for k, v in self.seen.items() if k in keep}
            self.counted = {k: v for k, v in self.counted.items() if k in keep}
            self.checked_at = {k: v for k, v in self.checked_at.items() if k in keep}

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
        """One pass: the counters, then the databases they (or the sweep) point at; returns how many
        changes it asked checks for."""
        with self._lock:
            targets, databases = list(self.targets), dict(self.databases)
        changed = 0
        try:
            if not targets or not self._take_turn():
                return 0  # checks hold every slot, or the server is backed off: next round
            counters = self._read_counters(targets)
            for target in self._due(targets, databases, counters):
                if self._stop.is_set():
                    break
                outcome = self._check(target, counters.get(databases[target.asset_id]) if counters else None)
                if outcome is None:
                    break
                changed += outcome
        finally:
            if self._lease is not None:
                self.budget.release(self._lease)
                self._lease = None
            self.rounds += 1
        return changed

    def _take_turn(self) -> bool:
        """Hold the slot, giving it back for a moment every HOLD_SECONDS; False when none came."""
        lease = self._lease
        if lease is not None and (lease.lost.is_set() or time.monotonic() - self._held_since > HOLD_SECONDS):
            self.budget.release(lease)
            self._lease = None
            self._stop.wait(YIELD_SECONDS)
        if self._lease is None:
            try:
                self._lease = self.budget.acquire(self.server, PURPOSE, wait=self.interval, stop=self._stop)
            except BudgetExhausted:
                return False
            self._held_since = time.monotonic()
        return True

    def _due(self, targets: list[Target], databases: dict[int, str], counters: dict[str, int] | None) -> list[Target]:
        if counters is None:
            return targets  # no counters to go by: walk them all
        moved = [t for t in targets if databases[t.asset_id] not in counters
                 or self.counted.get(t.asset_id) != counters[databases[t.asset_id]]]
        # The sweep: a share per round, so every database comes round within sweep_seconds.
        share = math.ceil(len(targets) * self.interval / max(self.sweep_seconds, self.interval))
        picked = {t.asset_id for t in moved}
        oldest = sorted((t for t in targets if t.asset_id not in picked),
                        key=lambda t: self.checked_at.get(t.asset_id, float("-inf")))
        return moved + oldest[:share]

    def _read_counters(self, targets: list[Target]) -> dict[str, int] | None:
        """Every database's row-write counters through one connection; None if the server does not
        count them or no database would let us read them."""
        start = self.rounds % len(targets)
        for target in (targets[start:] + targets[:start])[:COUNTER_SOURCES_TRIED]:
            conn = self._open(target)
            if conn is None:
                continue
            try:
                counters, tracked = write_counters.read(conn)
            except psycopg2.Error as exc:
                log.debug("%s: reading the write counters through asset %s failed: %s",
                          self.server, target.asset_id, exc)
                continue
            finally:
                close_fully(conn)
            if not tracked:
                log.debug("%s: track_counts is off; every database is pre-checked each round", self.server)
                return None
            return counters
        return None

    def _open(self, target: Target):
        def connect():
            conn = psycopg2.connect(target.dsn, connect_timeout=max(1, int(self.connect_timeout)),
                                    application_name="dbmon-precheck")
            conn.autocommit = True
            catalogue_first(conn)  # the queries name no schema; nobody's functions may shadow them
            return conn

        if self._lease is None:  # the round's slot was not had: nothing to connect under
            return None
        try:
            return self.budget.open(self.server, PURPOSE, connect, self._lease)
        except Exception as exc:  # noqa: BLE001 - an unreachable database is the scheduled check's to report
            log.debug("%s: pre-check of asset %s could not connect: %s", self.server, target.asset_id, exc)
            return None

    def _check(self, target: Target, counter: int | None) -> int | None:
        """1 if the marker moved, 0 if not (or not known yet); None when the slot could not be had."""
        previous = self.seen.get(target.asset_id) or self.known_marker(target.asset_id)
        if previous is None:
            return 0  # no baseline yet: the scheduled check takes the first one, no connection needed
        if not self._take_turn():
            return None
        conn = self._open(target)
        if conn is None:
            return 0
        self.direct_checks += 1
        try:
            marker = precheck.postgres_marker(conn)
        except psycopg2.Error as exc:
            log.debug("%s: pre-check of asset %s failed: %s", self.server, target.asset_id, exc)
            return 0
        finally:
            close_fully(conn)
        self.seen[target.asset_id] = marker
        self.checked_at[target.asset_id] = time.monotonic()
        if counter is not None:
            self.counted[target.asset_id] = counter
        if marker == previous:
            return 0
        self.on_change(target.asset_id)
        return 1
