"""How dbmon connects to a monitored PostgreSQL server: TLS and SCRAM unless opted out.

Monitoring credentials cross the network on every probe, so by default a connection is
encrypted (`sslmode=require`; `verify-full` when a CA file is given, which also proves the
server's identity) and the server must authenticate with SCRAM-SHA-256, never a plaintext or
MD5 password exchange and never `trust`. libpq 16 and later say so with
`require_auth=scram-sha-256`; older libpq has no such option, and `channel_binding=require`
is the nearest: it allows only SCRAM-SHA-256-PLUS, bound to the TLS channel.

`insecure: true` on an asset (or a container credential rule) is the only way out, meant for a
trust-auth database on a developer's machine. It is never read from a monitored system: a
container label can name an sslmode, but a weak one is raised to `require` here.
"""

from __future__ import annotations

from typing import Literal, get_args

import psycopg2

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSLMODES: tuple[str, ...] = get_args(SslMode)
ENCRYPTED_SSLMODES = ("require", "verify-ca", "verify-full")
REQUIRE_AUTH_SINCE = 160000


def libpq_supports_require_auth() -> bool:
    return psycopg2.__libpq_version__ >= REQUIRE_AUTH_SINCE


def default_sslmode(sslrootcert: str | None) -> str:
    return "verify-full" if sslrootcert else "require"


def libpq_params(connection: dict, password: str | None) -> dict:
    """Keyword arguments for psycopg2.connect / make_dsn from an asset's stored connection."""
    params = {"host": connection.get("host"), "port": connection.get("port", 5432),
              "dbname": connection.get("database"), "user": connection.get("user"), "password": password}
    sslrootcert = connection.get("sslrootcert") or None
    sslmode = connection.get("sslmode")
    if connection.get("insecure") is True:
        params.update(sslmode=sslmode or "prefer", sslrootcert=sslrootcert)
        return {k: v for k, v in params.items() if v is not None}
    if sslmode not in ENCRYPTED_SSLMODES:
        # Unset, or a weak mode stored by an older release or named by a container label.
        sslmode = default_sslmode(sslrootcert)
    params.update(sslmode=sslmode, sslrootcert=sslrootcert)
    if libpq_supports_require_auth():
        params["require_auth"] = "scram-sha-256"
    else:
        params["channel_binding"] = "require"
    return {k: v for k, v in params.items() if v is not None}


def weak_sslmode_error(sslmode: str) -> str:
    return (f"sslmode {sslmode!r} may send credentials unencrypted; use require, verify-ca or verify-full, "
            "or set insecure: true for a trusted local database")
