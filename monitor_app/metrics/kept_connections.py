"""Connections to monitored servers kept open across metric polls, each inside its server's
connection budget: one pool for PostgreSQL and MySQL alike, told apart by a `KeepPolicy`.

A poll every 10 s that connects each time pays the connection's start-up (a PostgreSQL backend's
fork and catalogue caches, a MySQL thread and its authentication) on every poll: more than the
poll itself. So a process keeps the connection of its last poll of a server open while it holds
that connection's budget slot, and the next poll of the same database through this process
reuses it.

The budget's cap still holds whatever the number of processes, since a kept connection keeps its
slot. So that kept connections never starve other work (schema checks, probes, other processes'
polls), one is kept only while at least one other slot of its server is free (counted when it is
first kept, then every `recheck_seconds`), at most one per server and process, and never longer
than its `idle_seconds` without use: a reaper thread then closes it and gives its slot back. A
kept connection that went stale (the server restarted, or closed it as idle) is replaced once,
silently; any other failure closes it, so the next poll starts clean.

What differs by engine is its policy: how a connection is opened under the budget and closed
fully (`engine`), how the driver shows a connection it knows is closed, which failure means the
connection was stale rather than the work failing, and until when an idle connection may still
be trusted (MySQL's server closes it at the `wait_timeout` it was opened with).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, TypeVar

from monitor_app.assets.connection_budget import ConnectionBudget, Lease, close_for

log = logging.getLogger("dbmon.metrics.kept_connections")
T = TypeVar("T")


def _trusted_while_kept(idle_for: float, idle_seconds: float) -> bool:
    return True  # nothing on the server closes it first: the reaper bounds how long it idles


@dataclass(frozen=True)
class KeepPolicy:
    engine: str  # the budget's engine: how a refusal is recognised and a connection closed fully
    gone: Callable[[object], bool]  # the driver already knows the connection is closed
    # (the failure, the connection it came from) -> the connection was stale: once more on a new one
    stale: Callable[[BaseException, object], bool]
    # (seconds idle, the idle_seconds it was opened with) -> may still be reused
    fresh: Callable[[float, float], bool] = _trusted_while_kept


@dataclass
class _Kept:
    key: str
    conn: object
    lease: Lease
    idle_seconds: float  # the connection's own: what it was opened with, whatever later polls ask
    used: float = 0.0  # monotonic time it was last given back


class KeptConnections:
    def __init__(self, budget: ConnectionBudget, policy: KeepPolicy, *, idle_seconds: float = 30.0) -> None:
        self.budget, self.policy, self.idle_seconds = budget, policy, idle_seconds
        self._close = close_for(policy.engine)
        self._kept: dict[str, _Kept] = {}  # server -> its kept connection
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._checked: dict[str, float] = {}  # server -> when its spare slot was last confirmed
        self.recheck_seconds = 15.0
        self.opened = 0  # connections opened, for tests and the bench: reuse shows as fewer

    def run(self, server: str, key: str, connect: Callable[[], object], work: Callable[[object], T], *,
            purpose: str = "metrics", idle_seconds: float | None = None, wait: float | None = None) -> T:
        """`work(conn)` on the kept connection of `key` or a new one in a slot of `server`, waiting
        up to `wait` seconds for a slot (BudgetExhausted after that). A new connection may idle
        `idle_seconds` (default: the pool's) before it is closed."""
        for attempt in (1, 2):
            kept, reused = self._checkout(server, key, purpose, connect, idle_seconds, wait)
            try:
                result = work(kept.conn)
            except BaseException as exc:
                # Asked before closing it: the policy may read the connection's state.
                retry = reused and attempt == 1 and self.policy.stale(exc, kept.conn)
                self._discard(kept.conn, kept.lease)
                if retry:
                    continue
                raise
            kept.used = time.monotonic()
            self._checkin(server, kept, reused)
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

    def reap(self, now: float | None = None) -> int:
        """Close kept connections idle past their `idle_seconds` or whose slot was lost; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [s for s, k in self._kept.items() if now - k.used >= k.idle_seconds or k.lease.lost.is_set()]
            gone = [self._kept.pop(s) for s in old]
        for k in gone:
            self._discard(k.conn, k.lease)
        return len(gone)

    # -- internals ---------------------------------------------------------------------------

    def _checkout(self, server: str, key: str, purpose: str, connect: Callable[[], object],
                  idle_seconds: float | None, wait: float | None) -> tuple[_Kept, bool]:
        with self._lock:
            kept = self._kept.pop(server, None)
        lease = None
        if kept is not None:
            if kept.lease.lost.is_set():
                self._discard(kept.conn, kept.lease)
            elif (kept.key == key and not self.policy.gone(kept.conn)
                  and self.policy.fresh(time.monotonic() - kept.used, kept.idle_seconds)):
                return kept, True
            else:
                # Another database or login on the same server, or a connection not to be trusted
                # any more: its slot serves the new connection.
                self._close_quietly(kept.conn)
                lease = kept.lease
        if lease is None:
            lease = self.budget.acquire(server, purpose, wait=wait)
        try:
            conn = self.budget.open(server, purpose, connect, lease, engine=self.policy.engine)
        except BaseException:
            self.budget.release(lease)
            raise
        self.opened += 1
        return _Kept(key, conn, lease, self.idle_seconds if idle_seconds is None else idle_seconds), False

    def _checkin(self, server: str, kept: _Kept, reused: bool) -> None:
        if kept.lease.lost.is_set() or self.policy.gone(kept.conn) or not self._slot_to_spare(server, reused):
            self._discard(kept.conn, kept.lease)
            return
        with self._lock:
            keep = server not in self._kept
            if keep:
                self._kept[server] = kept
        if keep:
            self._start_reaper()
        else:
            self._discard(kept.conn, kept.lease)  # another thread kept one for this server meanwhile

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

    def _close_quietly(self, conn) -> None:
        try:
            self._close(conn)
        except Exception:  # noqa: BLE001 - the slot must be given back whatever the socket did
            log.debug("closing a %s metrics connection failed", self.policy.engine, exc_info=True)

    def _discard(self, conn, lease: Lease) -> None:
        self._close_quietly(conn)
        self.budget.release(lease)

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = threading.Thread(target=self._reap_loop, name=f"{self.policy.engine}-kept-connection-reaper",
                                            daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        while True:
            with self._lock:
                if not self._kept:
                    self._reaper = None
                    return
                period = max(0.2, min(5.0, min(k.idle_seconds for k in self._kept.values()) / 3))
            time.sleep(period)
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("closing idle %s metrics connections failed", self.policy.engine, exc_info=True)


def idle_seconds_for(interval: float) -> float:
    """A kept connection outlives a couple of missed polls, not more."""
    return max(5.0, min(timedelta(minutes=5).total_seconds(), interval * 2.5))
