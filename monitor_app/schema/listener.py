"""LISTEN for the event trigger's notifications and turn each burst into one check.

A migration of 500 statements sends 500 notifications; the check that follows should run
once, when the burst is over. `Coalescer` is the pure timing rule (quiet period, capped by
a maximum wait so a never-ending stream still gets checked); `SchemaListener` runs it on a
thread with its own connection and reconnects with back-off. After a reconnect it reports
a batch with `reconnected=True`: notifications sent while it was away are lost, so a
check must run anyway.
"""

from __future__ import annotations

import json
import logging
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psycopg2

from monitor_app.schema.event_trigger import CHANNEL

log = logging.getLogger(__name__)
MAX_OBJECTS_KEPT = 20


@dataclass
class Batch:
    """What a burst of notifications told us; becomes the change set's context."""

    notifications: int = 0
    tags: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    application_names: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    first_at: str | None = None
    last_at: str | None = None
    reconnected: bool = False

    def add(self, payload: str) -> None:
        self.notifications += 1
        try:
            note = json.loads(payload)
        except ValueError:
            note = {}
        for attr, value in (("tags", note.get("tag")), ("users", note.get("user")),
                            ("application_names", note.get("application_name"))):
            items = getattr(self, attr)
            if value and value not in items:
                items.append(value)
        if note.get("object") and len(self.objects) < MAX_OBJECTS_KEPT and note["object"] not in self.objects:
            self.objects.append(note["object"])
        at = note.get("at")
        if at:
            self.first_at = self.first_at or at
            self.last_at = at

    def as_context(self) -> dict:
        return {"source": "trigger", "notifications": self.notifications, "command_tags": self.tags,
                "users": self.users, "application_names": self.application_names, "objects": self.objects,
                "first_at": self.first_at, "last_at": self.last_at, "reconnected": self.reconnected}


class Coalescer:
    """Release a batch once notifications pause for `quiet` s, or `max_wait` s after the first."""

    def __init__(self, quiet: float = 0.05, max_wait: float = 0.5):
        self.quiet, self.max_wait = quiet, max_wait
        self.batch: Batch | None = None
        self._first = self._last = 0.0

    def add(self, payload: str, now: float) -> None:
        if self.batch is None:
            self.batch, self._first = Batch(), now
        self.batch.add(payload)
        self._last = now

    def mark_reconnected(self, now: float) -> None:
        if self.batch is None:
            self.batch, self._first, self._last = Batch(), now, now
        self.batch.reconnected = True

    def wait_time(self, now: float) -> float | None:
        """Seconds until the pending batch is due; None when nothing is pending."""
        if self.batch is None:
            return None
        return max(0.0, min(self._last + self.quiet, self._first + self.max_wait) - now)

    def take_due(self, now: float) -> Batch | None:
        wait = self.wait_time(now)
        if wait is None or wait > 0:
            return None
        batch, self.batch = self.batch, None
        return batch


class SchemaListener:
    """One thread per database: LISTEN, coalesce, call `on_batch(batch)` per burst."""

    def __init__(self, dsn: str, on_batch: Callable[[Batch], None], *, quiet: float = 0.05,
                 max_wait: float = 0.5, idle_timeout: float = 5.0, max_backoff: float = 30.0, name: str = ""):
        self.dsn, self.on_batch = dsn, on_batch
        self.coalescer = Coalescer(quiet, max_wait)
        self.idle_timeout, self.max_backoff = idle_timeout, max_backoff
        self.name = name or "schema-listener"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        self.batches_sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff, connected_before = 1.0, False
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="dbmon-listener")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
                if connected_before:
                    self.coalescer.mark_reconnected(time.monotonic())
                connected_before, backoff = True, 1.0
                self.listening.set()
                self._loop(conn)
            except psycopg2.Error as exc:
                self.listening.clear()
                log.warning("%s: connection lost (%s); retrying in %.0fs", self.name, str(exc).strip(), backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                if conn is not None:
                    conn.close()

    def _loop(self, conn) -> None:
        last_heard = time.monotonic()
        while not self._stop.is_set():
            wait = self.coalescer.wait_time(time.monotonic())
            # Wake at least once a second so stop() is honoured promptly.
            timeout = min(1.0, self.idle_timeout if wait is None else wait)
            if select.select([conn], [], [], timeout) != ([], [], []):
                conn.poll()
                now = last_heard = time.monotonic()
                while conn.notifies:
                    self.coalescer.add(conn.notifies.pop(0).payload, now)
            elif wait is None and time.monotonic() - last_heard >= self.idle_timeout:
                with conn.cursor() as cur:  # a long-silent connection may be dead: find out now
                    cur.execute("SELECT 1")
                last_heard = time.monotonic()
            self._release()

    def _release(self) -> None:
        batch = self.coalescer.take_due(time.monotonic())
        if batch is None:
            return
        self.batches_sent += 1
        try:
            self.on_batch(batch)
        except Exception:  # the callback's failure must not stop listening
            log.exception("%s: handling a schema change batch failed", self.name)
