"""Every connection dbmon opens to a monitored PostgreSQL, MySQL or MariaDB server holds one of
that server's slots.

A monitor must never be the outage: a server with the default `max_connections` of 100 and a
hundred databases would otherwise be filled by dbmon's listeners and checks alone. So every
dbmon process (watcher, workers, API) shares one small cap per server (host and port): by
default 3, never more than a few percent of what the server reports it can serve.

The cap is enforced in dbmon's own store, which every process of both deployment modes reaches:
a slot is a row keyed by (server, slot number) with numbers below the budget, so the primary
key refuses a slot more than the budget allows, whichever process or machine asks. A slot is a
lease: its holder renews it while it keeps the connection, and a holder that died stops
renewing, so its slot is free again after `server_connection_lease` seconds.

Work that finds every slot taken waits (polling, with back-off) up to `server_connection_wait`
seconds, then gives up with `BudgetExhausted`, which callers treat as "deferred" (the task is
retried later), never as a failure of the target. A server that refuses a connection for lack
of slots ("too many clients"; MySQL's "Too many connections") is backed off as a whole: no
process connects to it for `server_refusal_backoff` seconds, so dbmon does not join a retry storm.

What differs between engines is small: how a server's limits are read, what its refusal says, and
how a closed connection is seen to have left the server (`engine` names it; PostgreSQL by default).
MySQL and MariaDB have no reserved slots to subtract: past `max_connections` they admit one more
connection for SUPER or CONNECTION_ADMIN, which dbmon never counts on.
"""

from __future__ import annotations

import logging
import os
import select as select_module
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator, cast

import psycopg2
from psycopg2.extensions import parse_dsn
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError

from monitor_app.errors import DbmonError
from monitor_app.store.base import Store, utcnow
from monitor_app.store.models.servers import MonitoredServer, ServerConnectionSlot

log = logging.getLogger("dbmon.connection_budget")

LIMITS_REREAD = timedelta(minutes=10)
# The first connection to a server dbmon has not seen yet reads its limits; until then one slot.
UNKNOWN_SERVER_BUDGET = 1
REFUSAL_MARKERS = ("too many clients", "remaining connection slots are reserved", "too many connections for role",
                   "too many connections for database")
LIMITS_SQL = ("SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections'), "
              "coalesce(current_setting('reserved_connections', true), '0')")
MAX_SANE_CONNECTIONS = 10_000_000
MYSQL_ENGINES = ("mysql", "mariadb")
MYSQL_DEFAULT_PORT = 3306
MYSQL_LIMITS_SQL = "SELECT @@max_connections"
# Too many connections; an account past its max_user_connections (1203, and 1226 for that resource).
# Numbers first: a server may speak another language (lc_messages); a wrapped error keeps the text.
MYSQL_REFUSAL_ERRORS = (1040, 1203)
MYSQL_REFUSAL_MARKERS = ("too many connections", "'max_user_connections'")
# A waiter looks for a free slot at least this often: a slot given back sits idle at most this long.
MAX_POLL_SECONDS = 0.25


class BudgetExhausted(DbmonError):
    """No slot became free in time, or the server is being backed off: the work is deferred."""

    permanent = False
    deferred = True


def server_key(connection: dict, engine: str = "postgresql") -> str:
    """host:port, or the socket directory and port: databases of one server share the key.
    A MySQL or MariaDB server without host or port is localhost:3306, as its clients take it."""
    if engine in MYSQL_ENGINES:
        host = str(connection.get("host") or "localhost").strip().lower()
        port = connection.get("port") or MYSQL_DEFAULT_PORT
    else:
        host = str(connection.get("host") or "/var/run/postgresql").strip().lower()
        port = connection.get("port") or 5432
    return f"{host}:{port}"[:255]


def server_key_from_dsn(dsn: str) -> str:
    params = parse_dsn(dsn)
    return server_key({"host": params.get("host"), "port": params.get("port")})


def cap_from_limits(max_connections: int, reserved: int, share: float) -> int:
    """A share of the slots the server offers ordinary roles; at least one, so dbmon can monitor at all."""
    return max(1, int(max(0, max_connections - reserved) * share))


def refused_for_slots(exc: BaseException, engine: str = "postgresql") -> bool:
    if engine in MYSQL_ENGINES:
        return _mysql_refused_for_slots(exc)
    text = str(exc).lower()
    return any(marker in text for marker in REFUSAL_MARKERS)


def _mysql_refused_for_slots(exc: BaseException) -> bool:
    """The driver's error, or the one a caller wrapped it in (its cause or context), says "no slot"."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        args = getattr(seen, "args", ())
        if args and isinstance(args[0], int) and args[0] in MYSQL_REFUSAL_ERRORS:
            return True
        if any(marker in str(seen).lower() for marker in MYSQL_REFUSAL_MARKERS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _wait_for_peer_close(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if not select_module.select([fd], [], [], remaining)[0]:
            break
        try:
            if not os.read(fd, 65536):
                break  # EOF: the server's end is gone
        except OSError:
            break


def close_fully(conn, timeout: float = 2.0) -> None:
    """Close, then wait until the server's backend has exited, so a slot given back is free there too.

    A backend leaves its end of the socket open until its process has exited (PostgreSQL's
    "synchronous close"); without waiting, the next connection of the same slot could start
    while the last one still occupies a server slot."""
    if getattr(conn, "closed", True):
        return
    try:
        fd = os.dup(conn.fileno())
    except (OSError, psycopg2.Error):
        conn.close()
        return
    try:
        conn.close()
        _wait_for_peer_close(fd, timeout)
    finally:
        os.close(fd)


def close_mysql_fully(conn, timeout: float = 2.0) -> None:
    """`close_fully` for a PyMySQL connection: after COM_QUIT the server closes its end as its
    thread ends, so the next connection of the slot does not meet the last one still counted."""
    sock = getattr(conn, "_sock", None)
    try:
        fd = os.dup(sock.fileno()) if sock is not None else -1
    except OSError:
        fd = -1
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closed already, or the server dropped it: nothing left to free
        pass
    if fd >= 0:
        try:
            _wait_for_peer_close(fd, timeout)
        finally:
            os.close(fd)


def close_for(engine: str) -> Callable[[object], None]:
    return close_mysql_fully if engine in MYSQL_ENGINES else close_fully


def _postgres_limits(conn) -> tuple[int, int]:
    try:
        with conn.cursor() as cur:
            cur.execute(LIMITS_SQL)
            values = cur.fetchone()
        return _bounded_int(values[0]), _bounded_int(values[1]) + _bounded_int(values[2])
    finally:
        if not conn.closed and not conn.autocommit:
            conn.rollback()


def _mysql_limits(conn) -> tuple[int, int]:
    from monitor_app.assets.mysql_transport import DRIVER_ERRORS

    try:
        with conn.cursor() as cur:
            cur.execute(MYSQL_LIMITS_SQL)
            values = cur.fetchone()
    except DRIVER_ERRORS as exc:
        raise ValueError(str(exc)) from None
    return _bounded_int(values[0]), 0


def _bounded_int(value) -> int:
    number = int(str(value).strip())
    if not 0 <= number <= MAX_SANE_CONNECTIONS:
        raise ValueError(f"out of range: {number}")
    return number


@dataclass
class Lease:
    server: str
    slot: int
    purpose: str
    lost: threading.Event = field(default_factory=threading.Event)


class ConnectionBudget:
    """One per process and store; `holder` names this process in the slot rows it owns."""

    def __init__(self, store: Store, *, budget: int = 3, share: float = 0.05, wait: float = 30.0,
                 lease_seconds: float = 30.0, refusal_backoff: float = 30.0, holder: str | None = None,
                 clock: Callable[[], datetime] = utcnow, overrides: Callable[[], dict[str, int]] | None = None):
        self.store, self.budget, self.share, self.wait = store, budget, share, wait
        # The config file's per-server budgets ({server: budget}), read on each use: every process
        # reads the same file, so all of them apply the same cap, and a change needs no restart.
        self.overrides = overrides or dict
        self.lease_seconds, self.refusal_backoff, self.clock = lease_seconds, refusal_backoff, clock
        self.holder = holder or f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[tuple[str, int], Lease] = {}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._limits_read: dict[str, float] = {}
        self._stopping = threading.Event()  # server -> monotonic time this process last saw them fresh

    @classmethod
    def from_settings(cls, store: Store, settings, overrides: Callable[[], dict[str, int]] | None = None
                      ) -> ConnectionBudget:
        return cls(store, budget=settings.server_connection_budget, share=settings.server_connection_share,
                   wait=settings.server_connection_wait, lease_seconds=settings.server_connection_lease,
                   refusal_backoff=settings.server_refusal_backoff, overrides=overrides)

    # -- the budget --------------------------------------------------------------------------

    def configured(self, server: str) -> tuple[int, str]:
        """(the budget asked for this server, "config" or "setting": where it comes from)."""
        try:
            override = self.overrides().get(server)
        except Exception:  # noqa: BLE001 - an unreadable config file leaves the setting in force
            log.warning("reading the per-server connection budgets failed; using the default", exc_info=True)
            override = None
        return (override, "config") if override is not None else (self.budget, "setting")

    def budget_for(self, row: MonitoredServer | None, server: str | None = None) -> int:
        """The slots dbmon may hold on a server: the configured budget within the share of its limits."""
        wanted, _ = self.configured(server or (row.server if row is not None else ""))
        if row is None or row.cap is None:
            return min(wanted, UNKNOWN_SERVER_BUDGET)
        return max(1, min(wanted, row.cap))

    def learn_limits(self, server: str, conn, engine: str = "postgresql") -> None:
        """Read the server's connection limits through a connection just opened, if not read lately."""
        now = self.clock()
        if time.monotonic() - self._limits_read.get(server, -1e9) < LIMITS_REREAD.total_seconds():
            return
        with self.store.session() as s:
            row = s.get(MonitoredServer, server)
            if row is not None and row.limits_read_at and row.limits_read_at > now - LIMITS_REREAD:
                self._limits_read[server] = time.monotonic() - (now - row.limits_read_at).total_seconds()
                return
        try:
            max_connections, reserved = (_mysql_limits(conn) if engine in MYSQL_ENGINES else _postgres_limits(conn))
        except (psycopg2.Error, TypeError, ValueError, IndexError) as exc:
            log.warning("%s: could not read the connection limits (%s); keeping one slot", server, exc)
            return
        with self.store.session() as s:
            row = s.get(MonitoredServer, server) or MonitoredServer(server=server, refusals=0)
            row.max_connections, row.reserved_connections = max_connections, reserved
            row.cap, row.limits_read_at = cap_from_limits(max_connections, reserved, self.share), now
            s.add(row)
        self._limits_read[server] = time.monotonic()

    def read_limits(self, server: str, connect: Callable[[], object], *, wait: float = 5.0) -> bool:
        """Connect once in a slot just to learn the server's limits; False if that was not possible."""
        try:
            with self.connection(server, "limits", connect, wait=wait):
                pass
        except Exception as exc:  # noqa: BLE001 - the caller goes on with one slot and tries again later
            log.info("%s: could not read the connection limits yet: %s", server, exc)
            return False
        return True

    def back_off(self, server: str, exc: BaseException) -> None:
        """The server refused a connection for lack of slots: nobody connects to it for a while."""
        now = self.clock()
        with self.store.session() as s:
            row = s.get(MonitoredServer, server) or MonitoredServer(server=server, refusals=0)
            row.backoff_until = now + timedelta(seconds=self.refusal_backoff)
            row.refusals = (row.refusals or 0) + 1
            row.last_refusal = (str(exc).strip().splitlines() or ["refused"])[0][:500]
            s.add(row)
        log.warning("%s refused a connection for lack of slots; backing off %.0f s", server, self.refusal_backoff)

    # -- slots -------------------------------------------------------------------------------

    def try_acquire(self, server: str, purpose: str) -> Lease | None:
        """Take a free slot now, or None. Raises BudgetExhausted while the server is backed off."""
        now = self.clock()
        try:
            with self.store.session() as s:
                # Expired leases first: a write, so on SQLite the rest of this runs under the write lock.
                s.execute(delete(ServerConnectionSlot).where(ServerConnectionSlot.server == server,
                                                             ServerConnectionSlot.expires_at < now))
                row = s.get(MonitoredServer, server)
                if row is not None and row.backoff_until is not None and row.backoff_until > now:
                    raise BudgetExhausted(f"{server} refused connections for lack of slots; "
                                          f"backing off until {row.backoff_until.isoformat()}")
                taken = set(s.scalars(select(ServerConnectionSlot.slot).where(ServerConnectionSlot.server == server)))
                budget = self.budget_for(row, server)
                # After a budget was lowered, slots above it stay held until given back: count them.
                free = [n for n in range(budget) if n not in taken] if len(taken) < budget else []
                if not free:
                    return None
                s.add(ServerConnectionSlot(server=server, slot=free[0], holder=self.holder, purpose=purpose[:64],
                                           acquired_at=now, expires_at=now + timedelta(seconds=self.lease_seconds)))
        except IntegrityError:
            return None  # another process took that slot first
        except OperationalError as exc:
            if "lock" in str(exc).lower():  # SQLite busy beyond its timeout: as good as "all taken"
                return None
            raise
        lease = Lease(server, free[0], purpose)
        with self._lock:
            self._held[(server, lease.slot)] = lease
        self._start_renewer()
        return lease

    def acquire(self, server: str, purpose: str, *, wait: float | None = None,
                stop: threading.Event | None = None) -> Lease:
        """Wait for a slot up to `wait` s (default: the setting); BudgetExhausted when none came free."""
        wait = self.wait if wait is None else wait
        deadline, delay = time.monotonic() + wait, 0.05
        while True:
            lease = self.try_acquire(server, purpose)
            if lease is not None:
                return lease
            remaining = deadline - time.monotonic()
            if self._stopping.is_set():
                raise BudgetExhausted(f"{server}: this process is stopping; deferred")
            if remaining <= 0 or (stop is not None and stop.is_set()):
                raise BudgetExhausted(f"{server}: every connection slot dbmon may use is taken; deferred")
            (stop or self._stopping).wait(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def stop_waiting(self) -> None:
        """The process is stopping: every wait for a slot ends now, deferred, so no task holds up shutdown."""
        self._stopping.set()

    def release(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop((lease.server, lease.slot), None)
        try:
            with self.store.session() as s:
                s.execute(delete(ServerConnectionSlot).where(
                    ServerConnectionSlot.server == lease.server, ServerConnectionSlot.slot == lease.slot,
                    ServerConnectionSlot.holder == self.holder))
        except Exception:  # noqa: BLE001 - the lease expires on its own; never fail the caller's work
            log.warning("releasing slot %s of %s failed; it expires by itself", lease.slot, lease.server,
                        exc_info=True)

    def close(self) -> None:
        """Give back every slot this process still holds (at shutdown: others need not wait for expiry)."""
        with self._lock:
            held = list(self._held.values())
        for lease in held:
            self.release(lease)

    def renew(self) -> int:
        """Extend every lease this process holds; a lease found taken over is marked lost."""
        with self._lock:
            held = list(self._held.values())
        if not held:
            return 0
        expires = self.clock() + timedelta(seconds=self.lease_seconds)
        with self.store.session() as s:
            for lease in held:
                result = s.execute(update(ServerConnectionSlot).where(
                    ServerConnectionSlot.server == lease.server, ServerConnectionSlot.slot == lease.slot,
                    ServerConnectionSlot.holder == self.holder).values(expires_at=expires))
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    lease.lost.set()
        return len(held)

    def _start_renewer(self) -> None:
        with self._lock:
            if self._renewer is not None and self._renewer.is_alive():
                return
            self._renewer = threading.Thread(target=self._renew_loop, name="connection-slot-renewer", daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        period = max(0.5, self.lease_seconds / 3)
        while True:
            time.sleep(period)
            with self._lock:
                if not self._held:  # nothing to keep alive: the next lease starts a new renewer
                    self._renewer = None
                    return
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a missed renewal only risks a lease expiring early
                log.warning("renewing connection slots failed", exc_info=True)

    # -- connections -------------------------------------------------------------------------

    def open(self, server: str, purpose: str, connect: Callable[[], object], lease: Lease, *,
             engine: str = "postgresql"):
        """Open a connection under `lease`; a refusal for lack of slots backs the server off."""
        try:
            conn = connect()
        except Exception as exc:  # callers may wrap the driver's error in their own
            if refused_for_slots(exc, engine):
                self.back_off(server, exc)
            raise
        try:
            self.learn_limits(server, conn, engine)
        except Exception:  # noqa: BLE001 - the limits are re-read next time; the work goes on
            log.warning("%s: storing the connection limits failed", server, exc_info=True)
        return conn

    @contextmanager
    def connection(self, server: str, purpose: str, connect: Callable[[], object], *,
                   wait: float | None = None, engine: str = "postgresql") -> Iterator:
        """A slot, a connection opened by `connect()`, both given back on the way out."""
        lease = self.acquire(server, purpose, wait=wait)
        conn = None
        try:
            conn = self.open(server, purpose, connect, lease, engine=engine)
            yield conn
        finally:
            if conn is not None:
                close_for(engine)(conn)
            self.release(lease)

    def slot_to_spare(self, server: str) -> bool:
        """True while fewer slots of the server are held (by anyone) than its budget: a connection
        kept between uses keeps its slot only while another is free for other work."""
        now = self.clock()
        with self.store.session() as s:
            taken = s.scalar(select(func.count()).select_from(ServerConnectionSlot).where(
                ServerConnectionSlot.server == server, ServerConnectionSlot.expires_at >= now))
            row = s.get(MonitoredServer, server)
        return (taken or 0) < self.budget_for(row, server)


def held_per_server(store: Store, now: datetime | None = None) -> dict[str, list[ServerConnectionSlot]]:
    now = now or utcnow()
    held: dict[str, list[ServerConnectionSlot]] = {}
    with store.session() as s:
        for slot in s.scalars(select(ServerConnectionSlot).where(ServerConnectionSlot.expires_at >= now)
                              .order_by(ServerConnectionSlot.server, ServerConnectionSlot.slot)):
            held.setdefault(slot.server, []).append(slot)
    return held


def release_slots_of_dead_processes(store: Store, pids: list[int], hostname: str | None = None) -> int:
    """Give back the slots of this machine's processes `pids`, which the caller knows are dead.

    A pool process killed at shutdown cannot give its slots back itself; without this, a worker
    started in its place would wait `server_connection_lease` seconds for slots nobody holds."""
    if not pids:
        return 0
    host = (hostname or socket.gethostname())[:64]
    host = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with store.session() as s:
        return sum(cast(CursorResult, s.execute(delete(ServerConnectionSlot).where(
            ServerConnectionSlot.holder.like(f"{host}:{pid}:%", escape="\\")))).rowcount for pid in pids)
