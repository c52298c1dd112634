"""Bounded, read-only sessions on MySQL and MariaDB servers, from `mysql://` / `mariadb://` DSNs.

    mysql://user:password@host:port/database?ssl=verify_identity&ssl_ca=/etc/ca.pem

A monitor must never be the outage, so every session dbmon opens here is bounded: a connect
timeout, a server-side statement timeout (`max_statement_time` in seconds on MariaDB,
`max_execution_time` in milliseconds on MySQL, which covers SELECT only), a client read timeout
behind both, a short `lock_wait_timeout` (catalogue reads take metadata locks and must not
queue behind, or in front of, a migration), and read-only transactions. Statements run
autocommitted, so no metadata lock outlives the statement that took it.

Query parameters: `ssl` (`disabled`, the default, `required`, `verify_ca`, `verify_identity`),
`ssl_ca`, `ssl_cert`, `ssl_key`, `connect_timeout` and `statement_timeout` (seconds), `socket`
(a Unix socket path instead of host and port). Anything else is refused by name, so a typo
cannot silently weaken TLS. Errors and `redacted()` never carry the password.
"""

from __future__ import annotations

import ssl as ssl_module
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions

from monitor_app.schema.snapshot_format import SnapshotError

SCHEMES = ("mysql", "mariadb")
SSL_MODES = ("disabled", "required", "verify_ca", "verify_identity")
DEFAULT_PORT = 3306
CONNECT_TIMEOUT = 5.0
STATEMENT_TIMEOUT = 10.0
LOCK_WAIT_TIMEOUT = 5
# With text as bytes (see `connect`) the driver's own DECIMAL converter fails; this one decodes first.
CONVERSIONS = {**conversions, FIELD_TYPE.DECIMAL: lambda b: Decimal(b.decode("ascii")),
               FIELD_TYPE.NEWDECIMAL: lambda b: Decimal(b.decode("ascii"))}
# Server error codes: statement timeout (MariaDB, MySQL), lock wait, missing privilege.
TIMEOUT_ERRORS = {1969, 3024}
LOCK_ERRORS = {1205}
ACCESS_ERRORS = {1044, 1142, 1143, 1227, 1370}


@dataclass(frozen=True)
class MysqlDsn:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    database: str
    socket: str | None = None
    ssl_mode: str = "disabled"
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    statement_timeout: float = STATEMENT_TIMEOUT

    def redacted(self) -> str:
        """The DSN as it may be printed or logged: no password, no query."""
        where = f"localhost:{self.socket}" if self.socket else f"{self.host}:{self.port}"
        return f"{self.scheme}://{self.user}@{where}/{self.database}"


def is_mysql_dsn(dsn: str) -> bool:
    return dsn.split("://", 1)[0].lower() in SCHEMES and "://" in dsn


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise SnapshotError(f"invalid MySQL DSN: {name} must be a number of seconds in (0, 3600], got {value!r}",
                            permanent=True, field="dsn")
    return seconds


def parse_dsn(dsn: str) -> MysqlDsn:
    """Parse and validate a DSN; the message of any error leaves the password out."""
    try:
        parts = urlsplit(dsn)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:  # a port that is not a number, a malformed host
        raise SnapshotError(f"invalid MySQL DSN: {exc}", permanent=True, field="dsn") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise SnapshotError(f"unsupported DSN scheme {scheme!r}: expected mysql:// or mariadb://",
                            permanent=True, field="dsn")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        # A snapshot is of one database; the server-wide view is not what a schema diff compares.
        shown = f"{scheme}://{parts.hostname or ''}/{database}"
        raise SnapshotError(f"unsupported DSN {shown!r}: name one database, {scheme}://user:password@host:port/db",
                            permanent=True, field="dsn")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "ssl":
            if value not in SSL_MODES:
                raise SnapshotError(f"invalid MySQL DSN: ssl must be one of {', '.join(SSL_MODES)}, got {value!r}",
                                    permanent=True, field="dsn")
            options["ssl_mode"] = value
        elif key in ("ssl_ca", "ssl_cert", "ssl_key", "socket"):
            options[key] = value
        elif key in ("connect_timeout", "statement_timeout"):
            options[key] = _seconds(key, value)
        else:
            raise SnapshotError(f"invalid MySQL DSN: unknown parameter {key!r}", permanent=True, field="dsn")
    if options.get("ssl_ca") and options.get("ssl_mode", "disabled") == "disabled":
        options["ssl_mode"] = "verify_ca"  # a CA given is a CA meant to be checked
    return MysqlDsn(scheme=scheme, host=parts.hostname or "127.0.0.1", port=port,
                    user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                    database=database, **options)


def _tls(dsn: MysqlDsn) -> ssl_module.SSLContext | None:
    if dsn.ssl_mode == "disabled":
        return None
    context = ssl_module.create_default_context(cafile=dsn.ssl_ca)
    if dsn.ssl_mode == "required":  # encrypted, identity not checked: what the mysql client calls REQUIRED
        context.check_hostname = False
        context.verify_mode = ssl_module.CERT_NONE
    elif dsn.ssl_mode == "verify_ca":
        context.check_hostname = False
    if dsn.ssl_cert:
        context.load_cert_chain(dsn.ssl_cert, dsn.ssl_key)
    return context


def is_mariadb(conn) -> bool:
    return "mariadb" in conn.get_server_info().lower()


def session_settings(conn, statement_timeout: float) -> str:
    """The one SET statement that bounds a session; MySQL and MariaDB name the knobs differently."""
    if is_mariadb(conn):
        return (f"SET SESSION max_statement_time = {statement_timeout:.3f}, "
                f"SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}, SESSION tx_read_only = 1")
    common = f"SET SESSION max_execution_time = {int(statement_timeout * 1000)}, " \
             f"SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}"
    if conn.get_server_info().startswith("5."):  # MySQL 5.7: no statistics cache, the older name
        return common + ", SESSION tx_read_only = 1"
    # information_schema_stats_expiry = 0: MySQL 8 otherwise serves TABLE_ROWS cached for a day.
    return common + ", SESSION transaction_read_only = 1, SESSION information_schema_stats_expiry = 0"


def connect(dsn: str | MysqlDsn, *, application_name: str = "dbmon-schema"):
    """A bounded, read-only, autocommitted session on the DSN's database. Text comes back as
    bytes (`use_unicode=False`) so that bytes the server sends that are not UTF-8 cannot crash
    the driver; `text()` decodes them with replacement characters."""
    parsed = parse_dsn(dsn) if isinstance(dsn, str) else dsn
    try:
        context = _tls(parsed)
    except (OSError, ssl_module.SSLError) as exc:
        raise SnapshotError(f"cannot set up TLS for {parsed.redacted()}: {exc}", permanent=True) from None
    try:
        conn = pymysql.connect(
            host=parsed.host, port=parsed.port, unix_socket=parsed.socket, user=parsed.user,
            password=parsed.password, database=parsed.database, charset="utf8mb4", use_unicode=False, conv=CONVERSIONS,
            autocommit=True, connect_timeout=parsed.connect_timeout,
            read_timeout=parsed.statement_timeout + 5, write_timeout=parsed.statement_timeout + 5,
            ssl=context, program_name=application_name)
    except pymysql.MySQLError as exc:
        raise SnapshotError(f"cannot connect to {parsed.redacted()}: {error_text(exc)}") from None
    try:
        bound_session(conn, parsed.statement_timeout)
    except pymysql.MySQLError as exc:
        conn.close()
        raise SnapshotError(f"cannot bound the session on {parsed.redacted()}: {error_text(exc)}") from None
    return conn


def bound_session(conn, statement_timeout: float = STATEMENT_TIMEOUT) -> None:
    """Bound a session opened elsewhere (an asset's connection, say) as `connect` bounds its own:
    statement timeout, lock wait timeout, read-only. Snapshots and pre-checks accept either."""
    with conn.cursor() as cur:
        cur.execute(session_settings(conn, statement_timeout))


def error_text(exc: BaseException) -> str:
    """A driver error as one bounded line (the server's message, never the DSN)."""
    args: tuple = tuple(getattr(exc, "args", ()))
    message = str(args[1]) if len(args) > 1 else str(exc)
    code = f"{args[0]}: " if args and isinstance(args[0], int) else ""
    return (code + message).strip().splitlines()[0][:500] if message.strip() else type(exc).__name__


def error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def text(value: Any) -> Any:
    """Bytes from the server as text, never raising on bytes that are not UTF-8."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def rows(cur, sql: str, args: tuple | list | dict | None = None) -> list[dict[str, Any]]:
    """Run one query; each row a dict of column name -> decoded value."""
    cur.execute(sql, args)
    names = [d[0] for d in cur.description or ()]
    return [{name: text(value) for name, value in zip(names, row, strict=True)} for row in cur.fetchall()]


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
