"""Connections kept open across polls, each inside its server's connection budget.

A poll every 10 s that connects each time pays the backend start-up (a fork, catalogue caches)
on every poll: more than the poll itself. So a process keeps the connection of its last poll of
a server open while it holds that connection's budget slot, and the next poll of the same
database through this process reuses it.

The budget's cap still holds whatever the number of processes, since a kept connection keeps its
slot. So that kept connections never starve other work (schema checks, other processes' polls),
one is kept only while at least one other slot of its server is free (counted when it is first
kept, then every `recheck_seconds`), at most one per server and process, and never longer than
`idle_seconds` without use. A kept
connection that went stale (the server restarted, an idle timeout) is replaced once, silently.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, TypeVar

import psycopg2

from monitor_app.assets.connection_budget import ConnectionBudget, Lease, close_fully

log = logging.getLogger("dbmon.metrics.sessions")
T = TypeVar("T")


@dataclass
class _Kept:
    key: str
    conn: object
    lease: Lease
    idle_since: float


def connection_key(dsn: str) -> str:
    return hashlib.sha256(dsn.encode()).hexdigest()


class PersistentSessions:
    def __init__(self, budget: ConnectionBudget, *, idle_seconds: float = 30.0):
        self.budget, self.idle_seconds = budget, idle_seconds
        self._kept: dict[str, _Kept] = {}  # server -> its kept connection
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._checked: dict[str, float] = {}  # server -> when its spare slot was last confirmed
        self.recheck_seconds = 15.0
        self.opened = 0  # connections opened, for tests and the bench: reuse shows as fewer

    def run(self, server: str, key: str, purpose: str, connect: Callable[[], object], work: Callable[[object], T],
            *, wait: float | None = None) -> T:
        """`work(conn)` on a kept connection of `key` or a new one in a slot of `server`, waiting
        up to `wait` seconds for a slot (BudgetExhausted after that)."""
        for attempt in (1, 2):
            conn, lease, reused = self._checkout(server, key, purpose, connect, wait)
            try:
                result = work(conn)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self._discard(conn, lease)
                if reused and attempt == 1:
                    continue  # the kept connection was stale: once more on a new one
                raise
            except BaseException:
                self._discard(conn, lease)
                raise
            self._checkin(server, key, conn, lease, reused)
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            self._discard(k.conn, k.lease)

    def kept_servers(self) -> list[str]:
        with self._lock:
            return sorted(self._kept)

    # -- internals ---------------------------------------------------------------------------

    def _checkout(self, server: str, key: str, purpose: str, connect, wait: float | None):
        with self._lock:
            kept = self._kept.pop(server, None)
        if kept is not None:
            if kept.lease.lost.is_set() or getattr(kept.conn, "closed", True):
                self._discard(kept.conn, kept.lease)
                kept = None
            elif kept.key == key:
                return kept.conn, kept.lease, True
            else:
                # Another database of the same server: its slot serves the new connection.
                close_fully(kept.conn)
        lease = kept.lease if kept is not None else self.budget.acquire(server, purpose, wait=wait)
        try:
            conn = self.budget.open(server, purpose, connect, lease)
        except BaseException:
            self.budget.release(lease)
            raise
        self.opened += 1
        return conn, lease, False

    def _checkin(self, server: str, key: str, conn, lease: Lease, reused: bool) -> None:
        if lease.lost.is_set() or getattr(conn, "closed", True) or not self._slot_to_spare(server, reused):
            self._discard(conn, lease)
            return
        with self._lock:
            keep = server not in self._kept
            if keep:
                self._kept[server] = _Kept(key, conn, lease, time.monotonic())
        if keep:
            self._start_reaper()
        else:
            self._discard(conn, lease)

    def _slot_to_spare(self, server: str, reused: bool) -> bool:
        """True while another slot of the server is free besides the one this connection holds.
        A connection already kept is re-checked every `recheck_seconds`, not at every poll."""
        if reused and time.monotonic() - self._checked.get(server, -1e9) < self.recheck_seconds:
            return True
        self._checked[server] = time.monotonic()
        try:
            return self.budget.slot_to_spare(server)
        except Exception:  # noqa: BLE001 - when unsure, give the slot back
            log.warning("%s: could not count its held slots; not keeping the connection", server, exc_info=True)
            return False

    def _discard(self, conn, lease: Lease | None) -> None:
        try:
            if conn is not None:
                close_fully(conn)
        except Exception:  # noqa: BLE001 - the slot must be given back whatever the socket did
            log.debug("closing a metrics connection failed", exc_info=True)
        if lease is not None:
            self.budget.release(lease)

    def reap(self, now: float | None = None) -> int:
        """Close kept connections idle too long or whose slot was lost; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [s for s, k in self._kept.items()
                   if now - k.idle_since >= self.idle_seconds or k.lease.lost.is_set()]
            gone = [self._kept.pop(s) for s in old]
        for k in gone:
            self._discard(k.conn, k.lease)
        return len(gone)

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="metrics-session-reaper", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        period = max(0.2, min(5.0, self.idle_seconds / 3))
        while True:
            time.sleep(period)
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("closing idle metrics connections failed", exc_info=True)
            with self._lock:
                if not self._kept:
                    self._reaper = None
                    return


def idle_seconds_for(interval: float) -> float:
    """A kept connection outlives a couple of missed polls, not more."""
    return max(5.0, min(timedelta(minutes=5).total_seconds(), interval * 2.5))
