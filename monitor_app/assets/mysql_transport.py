"""How dbmon connects to a monitored MySQL or MariaDB server: TLS, and no password in clear text
to a server that has not proven who it is.

The reasoning mirrors `pg_transport`. Monitoring credentials cross the network on every probe,
so by default a connection is encrypted (`sslmode: required`; `verify_identity` when a CA file is
given, which also proves the server's name). `insecure: true` is the only way to `disable` or
`preferred`, meant for a development server; a weak mode stored earlier or named by a container
label is raised to the default here, never obeyed.

MySQL has no equivalent of PostgreSQL's `require_auth=scram-sha-256`: several of its
authentication exchanges hand the server the password itself once TLS is up
(`mysql_clear_password`, PAM's `dialog`, `sha256_password`, and `caching_sha2_password` when the
server asks for "full authentication"). Over TLS to a server whose certificate was not checked
(`required`), whoever answers on the port would receive it. So unless the certificate is verified
(`verify_ca`, `verify_identity`) or the asset is `insecure`, those exchanges are refused before the
password is sent; challenge-response ones (`mysql_native_password`, MariaDB's `client_ed25519`,
the `caching_sha2_password` fast path) go ahead.

The modes are MySQL's own `--ssl-mode` names, lower case. `verify_ca` and `verify_identity` without
`sslrootcert` trust the system's CA store (managed services present publicly trusted certificates).
`preferred` never verifies: it takes TLS when offered and goes on without it otherwise.
"""

from __future__ import annotations

import ssl
import struct
from typing import Literal, get_args

import pymysql
from pymysql import _auth
from pymysql.connections import Connection
from pymysql.constants import CR

MySqlSslMode = Literal["disable", "preferred", "required", "verify_ca", "verify_identity"]
MYSQL_SSLMODES: tuple[str, ...] = get_args(MySqlSslMode)
ENCRYPTED_MYSQL_SSLMODES = ("required", "verify_ca", "verify_identity")
VERIFIED_MYSQL_SSLMODES = ("verify_ca", "verify_identity")
MYSQL_ENGINES = ("mysql", "mariadb")
DEFAULT_PORT = 3306
# A container rule or label speaks PostgreSQL's names; what each asks for, in MySQL's.
FROM_PG_SSLMODE = {"disable": "disable", "allow": "preferred", "prefer": "preferred", "require": "required",
                   "verify-ca": "verify_ca", "verify-full": "verify_identity"}
# Exchanges that send the password itself: named by the server's greeting or an auth switch.
CLEARTEXT_PLUGINS = ("mysql_clear_password", "dialog", "sha256_password")
_FAST_AUTH_OK, _FULL_AUTH_NEEDED = 3, 4
ERROR_TEXT_LIMIT = 500
# What a broken or hostile server can make the driver raise (bad packets: IndexError, struct.error ...).
DRIVER_ERRORS = (pymysql.MySQLError, OSError, ValueError, IndexError, struct.error, UnicodeError)


def default_sslmode(sslrootcert: str | None) -> str:
    return "verify_identity" if sslrootcert else "required"


def weak_sslmode_error(sslmode: str) -> str:
    return (f"sslmode {sslmode!r} may send credentials unencrypted; use required, verify_ca or verify_identity, "
            "or set insecure: true for a trusted local database")


def effective_sslmode(connection: dict) -> str:
    """The mode a connection really uses: the stored one, unless it is weak and the asset not `insecure`."""
    sslmode = connection.get("sslmode")
    sslmode = FROM_PG_SSLMODE.get(sslmode, sslmode) if isinstance(sslmode, str) else None
    if connection.get("insecure") is True:
        return sslmode if sslmode in MYSQL_SSLMODES else "preferred"
    if sslmode not in ENCRYPTED_MYSQL_SSLMODES:
        return default_sslmode(connection.get("sslrootcert") or None)
    return sslmode


def ssl_context(sslmode: str, sslrootcert: str | None) -> ssl.SSLContext | None:
    """The context for an encrypted mode; None for `disable` and `preferred` (PyMySQL's own)."""
    if sslmode not in ENCRYPTED_MYSQL_SSLMODES:
        return None
    if sslmode == "required":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=sslrootcert)
        context.check_hostname = sslmode == "verify_identity"
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _refusal(plugin: str) -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(
        CR.CR_AUTH_PLUGIN_CANNOT_LOAD,
        f"the server asked for the password in clear text ({plugin}) and its certificate is not verified; "
        "use sslmode verify_ca or verify_identity (with sslrootcert), or insecure: true for a trusted local server")


class _RefuseCleartext:
    """Auth plugin handler standing in for an exchange that would send the password itself."""

    plugin = "mysql_clear_password"

    def __init__(self, conn: Connection):
        self.conn = conn

    def authenticate(self, pkt):
        raise _refusal(self.plugin)


class _RefuseDialog(_RefuseCleartext):
    plugin = "dialog"


class _RefuseSha256(_RefuseCleartext):
    plugin = "sha256_password"


class _CachingSha2FastPathOnly:
    """`caching_sha2_password` without its full authentication, which sends the password over TLS.

    The same exchange as PyMySQL's `_auth.caching_sha2_password_auth`, stopping where that one
    would send the password: a server that has this account cached accepts the scramble."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def authenticate(self, pkt):
        conn = self.conn
        if not conn.password:
            return _auth._roundtrip(conn, b"")
        if pkt.is_auth_switch_request():
            conn.salt = pkt.read_all().removesuffix(b"\0")
            pkt = _auth._roundtrip(conn, _auth.scramble_caching_sha2(conn.password, conn.salt))
        if not pkt.is_extra_auth_data():
            raise pymysql.err.OperationalError(CR.CR_AUTH_PLUGIN_ERR, "caching_sha2_password: unexpected packet")
        pkt.advance(1)
        result = pkt.read_uint8()
        if result == _FAST_AUTH_OK:
            pkt = conn._read_packet()
            pkt.check_error()
            return pkt
        if result == _FULL_AUTH_NEEDED:
            raise _refusal("caching_sha2_password full authentication")
        raise pymysql.err.OperationalError(CR.CR_AUTH_PLUGIN_ERR, f"caching_sha2_password: unknown result {result}")


class GuardedConnection(Connection):
    """A PyMySQL connection that, unless `cleartext_allowed`, never sends the password itself."""

    def __init__(self, *, cleartext_allowed: bool, **kwargs):
        self.cleartext_allowed = cleartext_allowed
        if not cleartext_allowed:
            kwargs["auth_plugin_map"] = {"mysql_clear_password": _RefuseCleartext, "dialog": _RefuseDialog,
                                         "sha256_password": _RefuseSha256,
                                         "caching_sha2_password": _CachingSha2FastPathOnly}
        super().__init__(**kwargs)

    def _request_authentication(self):
        # The greeting can name sha256_password, whose first answer over TLS is the password.
        if not self.cleartext_allowed and self._auth_plugin_name in CLEARTEXT_PLUGINS:
            raise _refusal(self._auth_plugin_name)
        super()._request_authentication()


def connect(connection: dict, password: str | None, *, timeout: float, database: str | None = None
            ) -> GuardedConnection:
    """An open, autocommitting connection to the server an asset's stored `connection` names.

    `timeout` bounds the TCP connect and every read and write after it; `database` overrides the
    asset's (which may be unset: then no default schema). Raises `pymysql.MySQLError`
    (`describe_error` turns it into one line); socket and TLS failures arrive as its
    OperationalError too."""
    sslmode = effective_sslmode(connection)
    sslrootcert = connection.get("sslrootcert") or None
    kwargs: dict = dict(host=str(connection.get("host") or "localhost"), port=int(connection.get("port") or DEFAULT_PORT),
                        user=connection.get("user") or None, password=password or "",
                        database=database if database is not None else (connection.get("database") or None),
                        connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
                        charset="utf8mb4", autocommit=True, program_name="dbmon", local_infile=False)
    if sslmode == "disable":
        kwargs["ssl_disabled"] = True
    elif sslmode != "preferred":
        # An SSLContext makes PyMySQL refuse, before authenticating, a server that offers no TLS.
        kwargs["ssl"] = ssl_context(sslmode, sslrootcert)
    cleartext_allowed = connection.get("insecure") is True or sslmode in VERIFIED_MYSQL_SSLMODES
    return GuardedConnection(cleartext_allowed=cleartext_allowed, **kwargs)


def close_quietly(conn: Connection) -> None:
    """Close; a connection the server already dropped has nothing left to close."""
    try:
        conn.close()
    except DRIVER_ERRORS:
        pass


def tls_state(conn: Connection, sslmode: str) -> dict:
    """Whether the session is encrypted, with what, and whether the certificate was checked."""
    sock = conn._sock
    if not isinstance(sock, ssl.SSLSocket):
        return {"used": False, "sslmode": sslmode, "version": None, "cipher": None, "verified": False}
    cipher = sock.cipher()
    return {"used": True, "sslmode": sslmode, "version": sock.version(), "cipher": cipher[0] if cipher else None,
            "verified": sslmode in VERIFIED_MYSQL_SSLMODES}


def peer_certificate(conn: Connection) -> bytes | None:
    """The server's certificate (DER), verified or not: the binary form is there either way."""
    sock = conn._sock
    if not isinstance(sock, ssl.SSLSocket):
        return None
    return sock.getpeercert(binary_form=True)


def describe_error(exc: BaseException) -> str:
    """One bounded line: the server's or driver's message, with MySQL's error number when there is one."""
    args: tuple = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        text = f"{args[1]} (MySQL error {args[0]})"
    else:
        text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0] if text.strip() else type(exc).__name__
    return first[:ERROR_TEXT_LIMIT]
