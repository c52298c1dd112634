"""The metrics session on a MySQL or MariaDB server: opened through `assets.mysql_transport`
(TLS and authentication policy, shared with every MySQL connection dbmon makes), bounded in
time, and kept between polls inside the server's connection budget.

TLS comes from the asset's `sslmode` (MySQL's names, or PostgreSQL's) and `sslrootcert`, as
`mysql_transport` reads them: encrypted unless the asset is `insecure`, verified when a CA file
is given. A connection dict may instead say `ssl`: `verify` (certificate and host name),
`verify-ca`, `require` (encrypted, unverified) or `disable`, with `ssl_ca`; they stand for
`verify_identity`, `verify_ca`, `required`, `disable` and `sslrootcert`, and obey the same
policy (`disable` only with `insecure: true`).

The session limits itself: `max_statement_time` (MariaDB, seconds) or `max_execution_time`
(MySQL, milliseconds, SELECT only), `lock_wait_timeout` for metadata locks, and the transport's
read timeout behind both for what neither covers (SHOW on MySQL). `wait_timeout` is set to how
long dbmon keeps the connection idle, so the server itself closes a connection a stopped worker
left behind. The transport runs autocommit: a kept InnoDB connection inside an open transaction
would hold a read view and stall purge on the monitored server.

A kept connection holds its budget slot (`assets.connection_budget`) as PostgreSQL's do
(`pg_sessions`): it is kept only while another slot of its server is free, and given back with
its slot when idle past `idle_seconds`, so kept connections never starve schema checks or probes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable, TypeVar

import pymysql

from monitor_app.assets import mysql_transport
from monitor_app.assets.connection_budget import ConnectionBudget, Lease, close_mysql_fully, server_key
from monitor_app.errors import DbmonError

log = logging.getLogger("dbmon.metrics.mysql_sessions")

T = TypeVar("T")
DEFAULT_PORT = mysql_transport.DEFAULT_PORT
# The `ssl` names of a connection dict without `sslmode`, in MySQL's.
SSL_TO_SSLMODE = {"verify": "verify_identity", "verify-ca": "verify_ca", "require": "required",
                  "disable": "disable"}
# Client-side errors (CR_*): the connection itself is gone or unusable.
CLIENT_ERRORS = range(2000, 3000)
LOST = (2006, 2013, 2055)  # server has gone away, lost connection during query, lost connection at reading
FAILURE_KINDS = (
    ("timeout", (1969, 3024, 1317), ("timed out", "timeout")),
    ("refused", (1040, 1129, 1130, 2002, 2003, 2005, 2006, 2013), ()),
    ("missing privileges", (1044, 1045, 1142, 1143, 1227, 1698), ()),
)


@dataclass(frozen=True)
class SessionLimits:
    connect_timeout: float
    statement_timeout: float
    lock_timeout: float
    idle_seconds: float


def transport_connection(connection: dict) -> dict:
    """The asset's connection as `mysql_transport` reads it: `ssl` and `ssl_ca` stand in for
    an unset `sslmode` and `sslrootcert`."""
    out = dict(connection)
    given = out.get("ssl")
    if not out.get("sslmode") and isinstance(given, str) and given:
        out["sslmode"] = SSL_TO_SSLMODE.get(given.lower(), given.lower())
    if not out.get("sslrootcert") and out.get("ssl_ca"):
        out["sslrootcert"] = out["ssl_ca"]
    return out


def ssl_mode(connection: dict) -> str:
    """The TLS mode a connection is opened with, in MySQL's names."""
    return mysql_transport.effective_sslmode(transport_connection(connection))


def failure_reason(exc: BaseException) -> str:
    """`<kind>: <first line>`, kind one of timeout, refused, missing privileges, error."""
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = mysql_transport.describe_error(exc)
    for kind, codes, markers in FAILURE_KINDS:
        if errno in codes or any(marker in text.lower() for marker in markers):
            return f"{kind}: {text}"
    return f"error: {text}"


def is_mariadb(conn) -> bool:
    return "mariadb" in str(conn.get_server_info()).lower()


def connect(connection: dict, password: str | None, limits: SessionLimits):
    """A connection with the session's limits set; DbmonError (its reason first) when none can be had."""
    try:
        # The transport's timeout bounds every read too: past the statement timeout, which the
        # server enforces first.
        conn = mysql_transport.connect(transport_connection(connection), password,
                                       timeout=max(1.0, limits.connect_timeout, limits.statement_timeout + 1))
    except (*mysql_transport.DRIVER_ERRORS, TypeError) as exc:
        # OSError and ssl.SSLError: an unreadable CA file, a failed handshake.
        raise DbmonError(failure_reason(exc)) from None
    try:
        _limit_session(conn, limits)
    except pymysql.err.MySQLError as exc:
        mysql_transport.close_quietly(conn)
        raise DbmonError(failure_reason(exc)) from None
    return conn


def _limit_session(conn, limits: SessionLimits) -> None:
    idle = max(1, math.ceil(limits.idle_seconds))
    lock = max(1, math.ceil(limits.lock_timeout))
    statement = (f"max_statement_time = {max(0.001, limits.statement_timeout):.3f}" if is_mariadb(conn)
                 else f"max_execution_time = {max(1, int(limits.statement_timeout * 1000))}")
    with conn.cursor() as cur:
        try:
            cur.execute(f"SET SESSION wait_timeout = {idle}, lock_wait_timeout = {lock}, {statement}")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1193:  # unknown variable: a MySQL before 5.7.8 has no statement limit
                raise
            cur.execute(f"SET SESSION wait_timeout = {idle}, lock_wait_timeout = {lock}")


def connection_identity(connection: dict, password: str | None) -> str:
    """What a kept connection was opened with: a changed password or TLS mode opens a new one."""
    parts = [connection.get(k) for k in ("host", "port", "user", "database", "ssl", "sslmode", "ssl_ca",
                                         "sslrootcert", "insecure")]
    return hashlib.sha256(repr((parts, password)).encode()).hexdigest()


def server_of(connection: dict) -> str:
    """The server's key in the connection budget: host:port, localhost:3306 by default."""
    return server_key(connection, "mysql")


def lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return bool(exc.args) and exc.args[0] in LOST


@dataclass
class _Kept:
    identity: str
    conn: object
    lease: Lease
    used: float
    idle_seconds: float


class KeptConnections:
    """At most one connection per server in this process, reused by the next poll of it, each in
    one of its server's budget slots.

    A kept connection idle past its `idle_seconds` is not trusted (the server closed it at its
    `wait_timeout`) and is replaced; one found dead mid-poll is replaced once, silently. Any
    other failure closes it: the next poll starts clean. A reaper closes kept connections idle
    past their `idle_seconds` and gives their slots back."""

    def __init__(self, budget: ConnectionBudget) -> None:
        self.budget = budget
        self._kept: dict[str, _Kept] = {}  # server -> its kept connection
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._checked: dict[str, float] = {}  # server -> when its spare slot was last confirmed
        self.recheck_seconds = 15.0
        self.opened = 0  # for tests and the bench: reuse shows as fewer

    def run(self, server: str, identity: str, connect: Callable[[], object], work: Callable[[object], T],
            idle_seconds: float, *, purpose: str = "metrics", wait: float | None = None) -> T:
        """`work(conn)` on the kept connection or a new one in a slot of `server`, waiting up to
        `wait` seconds for a slot (BudgetExhausted after that)."""
        for attempt in (1, 2):
            conn, lease, reused = self._checkout(server, identity, purpose, connect, idle_seconds, wait)
            try:
                result = work(conn)
            except pymysql.err.MySQLError as exc:
                self._discard(conn, lease)
                if reused and attempt == 1 and lost_connection(exc):
                    continue
                raise
            except BaseException:
                self._discard(conn, lease)
                raise
            self._checkin(server, _Kept(identity, conn, lease, time.monotonic(), idle_seconds), reused)
            return result
        raise AssertionError("unreachable")

    def _checkout(self, server: str, identity: str, purpose: str, connect: Callable[[], object],
                  idle_seconds: float, wait: float | None):
        with self._lock:
            kept = self._kept.pop(server, None)
        lease = None
        if kept is not None:
            # A second short of the server's wait_timeout: it may close the connection any moment.
            fresh = time.monotonic() - kept.used < max(0.5, idle_seconds - 1)
            if kept.lease.lost.is_set():
                self._discard(kept.conn, kept.lease)
            elif kept.identity == identity and fresh:
                return kept.conn, kept.lease, True
            else:
                close_mysql_fully(kept.conn)
                lease = kept.lease  # its slot serves the new connection
        if lease is None:
            lease = self.budget.acquire(server, purpose, wait=wait)
        try:
            conn = self.budget.open(server, purpose, connect, lease, engine="mysql")
        except BaseException:
            self.budget.release(lease)
            raise
        self.opened += 1
        return conn, lease, False

    def _checkin(self, server: str, kept: _Kept, reused: bool) -> None:
        if kept.lease.lost.is_set() or not self._slot_to_spare(server, reused):
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
        """Counted when a connection is first kept, then every `recheck_seconds`."""
        if reused and time.monotonic() - self._checked.get(server, -1e9) < self.recheck_seconds:
            return True
        self._checked[server] = time.monotonic()
        try:
            return self.budget.slot_to_spare(server)
        except Exception:  # noqa: BLE001 - when unsure, give the slot back
            log.warning("%s: could not count its held slots; not keeping the connection", server, exc_info=True)
            return False

    def _discard(self, conn, lease: Lease | None) -> None:
        close_mysql_fully(conn)
        if lease is not None:
            self.budget.release(lease)

    def reap(self, now: float | None = None) -> int:
        """Close kept connections idle past their `idle_seconds` or whose slot was lost; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [s for s, k in self._kept.items() if now - k.used >= k.idle_seconds or k.lease.lost.is_set()]
            gone = [self._kept.pop(s) for s in old]
        for k in gone:
            self._discard(k.conn, k.lease)
        return len(gone)

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="mysql-session-reaper", daemon=True)
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
                log.warning("closing idle MySQL metrics connections failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            self._discard(k.conn, k.lease)

    def kept_servers(self) -> list[str]:
        with self._lock:
            return sorted(self._kept)


_BY_RUNTIME: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BY_RUNTIME_LOCK = threading.Lock()


def kept_for(rt) -> KeptConnections:
    """The runtime's kept MySQL connections: its `mysql_sessions` when it has one, else one per
    runtime object (in its connection budget), dropped with it."""
    own = getattr(rt, "mysql_sessions", None)
    if isinstance(own, KeptConnections):
        return own
    with _BY_RUNTIME_LOCK:
        kept = _BY_RUNTIME.get(rt)
        if kept is None:
            kept = _BY_RUNTIME[rt] = KeptConnections(rt.connection_budget)
        return kept


def close_kept(rt) -> None:
    kept_for(rt).close()
