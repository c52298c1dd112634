"""LISTEN for the event trigger's notifications and turn each burst into one check.

A migration sends one notification per distinct command tag when run as one transaction, and
one per statement when autocommitted; the check that follows should run once, when the burst
is over. `Coalescer` is the pure timing rule (quiet period, capped by a maximum wait so a
never-ending stream still gets checked, and a trailing check `TRAILING_CHECK_SECONDS` after the
last notification). The trigger fires when a statement starts and the notification arrives at
the first commit, which for a `CONCURRENTLY` command is one of its internal transactions, before
the command has finished; and a trigger of an earlier release, until the next check upgrades
it, left out autocommitted statements close behind the session's previous one. So the trailing
check first waits until every session that sent a notification of the burst is outside a
transaction (`pg_locks`, which any role may read), asking again after a growing interval up to
`MAX_FOLLOW_INTERVAL`, for at most `FOLLOW_LIMIT_SECONDS`.
`SchemaListener` runs it on a thread with its own connection and reconnects with back-off. Each
time it starts listening, the first time included, it reports a batch with `reconnected=True`:
notifications sent while nobody listened (a lost connection, a watcher restart or upgrade) are
lost, so a check must run anyway; without notifications of its own, that check reads the cheap
pre-check marker first and snapshots only when the catalogue moved.

Any user of the database can NOTIFY the channel, so a payload is read by `notifications`
(malformed ones are dropped and counted) and taken only as a hint naming a command. Who sent
the notifications of a batch is what the server reports for their senders' pids, looked up once
as the batch is released. A forged notification can only cause one more check, coalesced with
the others and attributed to the session that sent it. No payload, bug or lost connection ends
the listening thread: it reports the failure, backs off and starts over, and reports the
recovery.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psycopg2

from monitor_app.assets.connection_budget import BudgetExhausted, close_fully
from monitor_app.schema import notifications
from monitor_app.schema.event_trigger import CHANNEL
from monitor_app.schema.notifications import Received, RejectedNotification

log = logging.getLogger(__name__)
MAX_NAMES_KEPT = 20
TRAILING_CHECK_SECONDS = 0.25
MAX_FOLLOW_INTERVAL = 2.0
FOLLOW_LIMIT_SECONDS = 3600.0
MAX_SENDERS_FOLLOWED = 1000
# Sessions among these pids that are inside a transaction (every transaction holds its own
# virtual transaction id lock until its commit is visible).
IN_TRANSACTION = ("SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'virtualxid' "
                  "AND granted AND pid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.int4[])")
# Who the server says sent a batch's notifications: visible to any role, like the pid itself.
SENDERS = ("SELECT pid, usename, application_name FROM pg_catalog.pg_stat_activity "
           "WHERE pid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.int4[])")


def _keep(items: list, value, limit: int = MAX_NAMES_KEPT) -> None:
    if value and value not in items and len(items) < limit:
        items.append(value)


@dataclass
class Batch:
    """What a burst of notifications told us; becomes the change set's context.

    The command tags are what the notifications named: any session may name any. Users and
    application names are what the server reported for the sending sessions (their pids) when
    the batch was released; a session that had ended by then is counted, not named. The trigger
    names no objects: the check's diff says what changed."""

    notifications: int = 0
    tags: list[str] = field(default_factory=list)
    earlier_release: int = 0  # notifications in the payload shape of a trigger not yet upgraded
    senders: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    application_names: list[str] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    ended_sessions: int = 0
    first_at: str | None = None
    last_at: str | None = None
    reconnected: bool = False
    # No notification of its own: the check a while after a burst (see Coalescer); it names the
    # burst's tags and senders, and counts none of its notifications.
    trailing: bool = False

    def add(self, received: Received, sender: int | None = None) -> None:
        self.notifications += 1
        self.earlier_release += received.earlier_release
        self.follow(received.tag, sender)
        # The trigger stamps nothing (a time would defeat NOTIFY's collapsing of identical
        # payloads); the time of receipt is within milliseconds of the commit.
        at = received.received_at.isoformat()
        self.first_at = self.first_at or at
        self.last_at = at

    def follow(self, tag: str, sender: int | None) -> None:
        """Keep a notification's tag and sender (a trailing batch does so without counting it)."""
        _keep(self.tags, tag)
        if sender is not None and sender not in self.senders and len(self.senders) < MAX_SENDERS_FOLLOWED:
            self.senders.append(sender)

    def attribute(self, found: dict[int, tuple[str | None, str | None]]) -> None:
        """Name the senders from the server's report, {pid: (user, application name)}."""
        for pid in self.senders:
            if pid not in found:
                self.ended_sessions += 1
                _keep(self.sessions, {"pid": pid, "ended": True})
                continue
            user, application = found[pid]
            _keep(self.users, user)
            _keep(self.application_names, application)
            _keep(self.sessions, {"pid": pid, "user": user, "application_name": application})

    def as_context(self) -> dict:
        return {"source": "trigger", "notifications": self.notifications, "command_tags": self.tags,
                "users": self.users, "application_names": self.application_names,
                "first_at": self.first_at, "last_at": self.last_at, "reconnected": self.reconnected,
                "trailing": self.trailing,
                "attribution": {
                    "by": "server", "sessions": self.sessions, "senders": len(self.senders),
                    "ended_sessions": self.ended_sessions, "earlier_release_payloads": self.earlier_release}}


class Coalescer:
    """Release a batch once notifications pause for `quiet` s, or `max_wait` s after the first;
    then one trailing batch `trailing + quiet` s after the last notification.

    The trailing batch is for what a notification arrived ahead of (a `CONCURRENTLY` command's
    later transactions, statements an earlier release's trigger left out); the listener holds it
    back (`postpone_trailing`) while a session that sent a notification (`senders`) is still
    inside a transaction. A notification arriving meanwhile
    starts a batch and moves the trailing one later. `trailing=0` turns it off."""

    def __init__(self, quiet: float = 0.05, max_wait: float = 0.5, trailing: float = 0.0):
        self.quiet, self.max_wait, self.trailing = quiet, max_wait, trailing
        self.batch: Batch | None = None
        self._first = self._last = 0.0
        self._trailing_at: float | None = None
        self._postponed = 0
        self._due_first: float | None = None
        self._burst: Batch | None = None

    def add(self, received: Received, now: float, sender: int | None = None) -> None:
        if self.batch is None:
            self.batch, self._first = Batch(), now
        self.batch.add(received, sender)
        if self.trailing > 0:
            # What the trailing batch will say of the burst: what it can find was done by these
            # same sessions after their notifications. On a broker that polls, the burst's check
            # and the trailing one may run side by side, and either may be the one that stores.
            # Every accepted notification counts, a forged one too: all it can cause is this one
            # trailing check, coalesced with the burst's, and held back while its sender is in a
            # transaction for at most FOLLOW_LIMIT_SECONDS.
            self._burst = self._burst or Batch(trailing=True)
            self._burst.follow(received.tag, sender)
            self._trailing_at = now + self.trailing + self.quiet
            self._postponed, self._due_first = 0, None
        self._last = now

    @property
    def senders(self) -> set[int]:
        """The sessions that notified in the burst the trailing check follows: it waits for them."""
        return set(self._burst.senders) if self._burst is not None else set()

    def trailing_due(self, now: float) -> bool:
        return self.batch is None and self._trailing_at is not None and self._trailing_at <= now

    def postpone_trailing(self, now: float) -> bool:
        """Hold the due trailing batch back a while longer (doubling, up to MAX_FOLLOW_INTERVAL);
        False, changing nothing, once it has been held back FOLLOW_LIMIT_SECONDS."""
        self._due_first = self._due_first if self._due_first is not None else now
        if now - self._due_first >= FOLLOW_LIMIT_SECONDS:
            return False
        self._trailing_at = now + min(MAX_FOLLOW_INTERVAL, max(self.trailing, self.quiet) * 2 ** self._postponed)
        self._postponed += 1
        return True

    def mark_reconnected(self, now: float) -> None:
        if self.batch is None:
            self.batch, self._first, self._last = Batch(), now, now
        self.batch.reconnected = True

    def wait_time(self, now: float) -> float | None:
        """Seconds until the pending batch is due; None when nothing is pending."""
        if self.batch is not None:
            return max(0.0, min(self._last + self.quiet, self._first + self.max_wait) - now)
        if self._trailing_at is not None:
            return max(0.0, self._trailing_at - now)
        return None

    def take_due(self, now: float) -> Batch | None:
        wait = self.wait_time(now)
        if wait is None or wait > 0:
            return None
        if self.batch is None:
            self._trailing_at, self._postponed, self._due_first = None, 0, None
            trailing, self._burst = self._burst or Batch(trailing=True), None
            return trailing
        batch, self.batch = self.batch, None
        if self._trailing_at is not None and self._trailing_at <= now:
            self._trailing_at = None  # released late enough to be the trailing check itself
            self._burst = None
        return batch


class SchemaListener:
    """One thread per database: LISTEN, coalesce, call `on_batch(batch)` per burst.

    `on_failure(reason)` is called once when listening stops working (a lost connection, or
    anything unexpected), `on_recovery(seconds_down)` once it works again."""

    def __init__(self, dsn: str, on_batch: Callable[[Batch], None], *, quiet: float = 0.05,
                 max_wait: float = 0.5, trailing: float = TRAILING_CHECK_SECONDS, idle_timeout: float = 5.0, max_backoff: float = 30.0, name: str = "",
                 on_failure: Callable[[str], None] | None = None,
                 on_recovery: Callable[[float], None] | None = None, budget=None, server: str = ""):
        self.dsn, self.on_batch = dsn, on_batch
        # With a budget, the connection holds one of the server's slots for as long as it listens.
        self.budget, self.server = budget, server
        self.on_failure, self.on_recovery = on_failure, on_recovery
        self.coalescer = Coalescer(quiet, max_wait, trailing)
        self.idle_timeout, self.max_backoff = idle_timeout, max_backoff
        self.name = name or "schema-listener"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        self.batches_sent = 0
        self.rejected = 0
        self.failures = 0
        self._failed_at: float | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request_stop(self) -> None:
        """Ask without waiting: a watcher with many listeners asks them all, then waits once."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        if self._thread:
            self._thread.join(timeout)

    def _connect(self):
        def connect():
            return psycopg2.connect(self.dsn, connect_timeout=5, application_name="dbmon-listener")

        if self.budget is None:
            return connect(), None
        lease = self.budget.acquire(self.server, "listen", stop=self._stop)
        try:
            return self.budget.open(self.server, "listen", connect, lease), lease
        except BaseException:
            self.budget.release(lease)
            raise

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            conn = lease = None
            try:
                conn, lease = self._connect()
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
                self.coalescer.mark_reconnected(time.monotonic())
                backoff = 1.0
                self.listening.set()
                self._recovered()
                self._loop(conn, lease)
            except BudgetExhausted:
                # Every slot of the server is in use: not a failure of this database; wait for one.
                self.listening.clear()
                self._stop.wait(1.0)
            except psycopg2.Error as exc:
                backoff = self._failed(f"connection lost: {str(exc).strip()}", backoff)
            except Exception as exc:  # noqa: BLE001 - nothing may end the thread; report and start over
                log.exception("%s: listening failed", self.name)
                backoff = self._failed(f"listening failed: {type(exc).__name__}: {exc}"[:500], backoff)
            finally:
                if conn is not None:
                    close_fully(conn)
                if lease is not None:
                    self.budget.release(lease)

    def _failed(self, reason: str, backoff: float) -> float:
        self.listening.clear()
        self.failures += 1
        log.warning("%s: %s; retrying in %.1fs", self.name, reason, backoff)
        if self._failed_at is None:
            self._failed_at = time.monotonic()
            self._tell(self.on_failure, reason)
        self._stop.wait(backoff)
        return min(backoff * 2, self.max_backoff)

    def _recovered(self) -> None:
        if self._failed_at is not None:
            down, self._failed_at = time.monotonic() - self._failed_at, None
            self._tell(self.on_recovery, down)

    def _tell(self, callback, arg) -> None:
        if callback is None:
            return
        try:
            callback(arg)
        except Exception:  # noqa: BLE001 - reporting must not stop listening
            log.exception("%s: reporting the listener's state failed", self.name)

    def _receive(self, notify, now: float) -> None:
        try:
            received = notifications.read(notify.payload)
        except RejectedNotification as exc:
            self.rejected += 1
            if self.rejected == 1 or self.rejected % 1000 == 0:
                log.warning("%s: dropped a malformed notification from backend %s (%s); %d so far",
                            self.name, notify.pid, exc, self.rejected)
            return
        self.coalescer.add(received, now, notify.pid)

    def _attribute(self, conn, batch: Batch) -> None:
        if not batch.senders:
            return
        with conn.cursor() as cur:
            cur.execute(SENDERS, (batch.senders,))
            batch.attribute({pid: (user, application) for pid, user, application in cur.fetchall()})

    def _senders_in_transaction(self, conn) -> bool:
        with conn.cursor() as cur:
            cur.execute(IN_TRANSACTION, (sorted(self.coalescer.senders),))
            return cur.fetchone()[0] > 0

    def _loop(self, conn, lease=None) -> None:
        last_heard = time.monotonic()
        while not self._stop.is_set():
            if lease is not None and lease.lost.is_set():
                return  # another process took the slot over (our renewals failed): connect afresh
            wait = self.coalescer.wait_time(time.monotonic())
            # Wake at least once a second so stop() is honoured promptly.
            timeout = min(1.0, self.idle_timeout if wait is None else wait)
            if select.select([conn], [], [], timeout) != ([], [], []):
                conn.poll()
                now = last_heard = time.monotonic()
                while conn.notifies:
                    self._receive(conn.notifies.pop(0), now)
            elif wait is None and time.monotonic() - last_heard >= self.idle_timeout:
                with conn.cursor() as cur:  # a long-silent connection may be dead: find out now
                    cur.execute("SELECT 1")
                last_heard = time.monotonic()
            self._release(conn)

    def _release(self, conn) -> None:
        now = time.monotonic()
        if (self.coalescer.trailing_due(now) and self.coalescer.senders and self._senders_in_transaction(conn)
                and self.coalescer.postpone_trailing(now)):
            return
        batch = self.coalescer.take_due(now)
        if batch is None:
            return
        self._attribute(conn, batch)
        self.batches_sent += 1
        try:
            self.on_batch(batch)
        except Exception:  # the callback's failure must not stop listening
            log.exception("%s: handling a schema change batch failed", self.name)
