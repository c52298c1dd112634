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

The session is kept between polls in `kept_connections`, as PostgreSQL's are, under this
module's `KEEP_POLICY`: it holds its budget slot (`assets.connection_budget`) only while another
slot of its server is free, and is given back with its slot when idle past `idle_seconds`, so
kept connections never starve schema checks or probes. One idle to within a second of its
`wait_timeout` is not trusted (the server may have closed it) and is replaced.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import pymysql

from monitor_app.assets import mysql_transport
from monitor_app.assets.connection_budget import server_key
from monitor_app.errors import DbmonError
from monitor_app.metrics.kept_connections import KeepPolicy

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


def _closed(conn) -> bool:
    return not getattr(conn, "open", False)


def _connection_lost(exc: BaseException, conn) -> bool:
    """The kept connection was dead before the poll (the server restarted, killed it, or closed it
    as idle). A server-side statement limit (1969, 3024) leaves it open: not tried again."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] in LOST


def _fresh(idle_for: float, idle_seconds: float) -> bool:
    """The server closes a connection idle past its `wait_timeout` (`idle_seconds`, rounded up,
    set when it was opened): a second short of that, it may do so any moment."""
    return idle_for < max(0.5, idle_seconds - 1)


# How the kept connections of MySQL metrics (`Runtime.mysql_sessions`) are closed and replaced.
KEEP_POLICY = KeepPolicy(engine="mysql", gone=_closed, stale=_connection_lost, fresh=_fresh)
