"""Connectivity and TLS of a container's service ports.

TCP: connect time and up/down per port. TLS: PostgreSQL negotiates it inside its
own protocol (an 8-byte SSLRequest answered by `S` or `N`) before the handshake;
MySQL and MariaDB greet first, say in the greeting whether they offer TLS, and switch
to it after the client's 32-byte SSL request; everything else is tried as plain TLS.
Certificates are read without verification on purpose, and judged by
`monitor_app.assets.certificates` (shared with the MySQL login probe).
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

from monitor_app.assets.certificates import Certificate, TlsFinding, parse_certificate, tls_findings

__all__ = ["Certificate", "PortProbe", "TlsFinding", "TlsProbe", "fetch_certificate", "parse_certificate",
           "read_certificate", "tcp_probe", "tls_findings"]

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass
class PortProbe:
    host: str
    port: int
    up: bool
    connect_ms: float | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"


def tcp_probe(host: str, port: int, timeout: float) -> PortProbe:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return PortProbe(host, port, True, round((time.perf_counter() - started) * 1000, 3))
    except OSError as exc:
        return PortProbe(host, port, False, None, exc.strerror or str(exc) or type(exc).__name__)


# Engines that must be asked for TLS first (an SSLRequest); their 'N' answer means "no TLS".
SSLREQUEST_ENGINES = ("postgresql", "pgbouncer", "cockroachdb")
# Engines that greet first and offer TLS in the greeting (MySQL's connection phase).
GREETING_ENGINES = ("mysql", "mariadb")
MYSQL_CLIENT_PROTOCOL_41, MYSQL_CLIENT_SSL, MYSQL_CLIENT_SECURE_CONNECTION = 0x200, 0x800, 0x8000
MYSQL_UTF8MB4 = 45
# A greeting is about 100 bytes; a server sending more is not one dbmon should read on.
MAX_GREETING = 4096


@dataclass
class TlsProbe:
    certificate: Certificate | None
    error: str | None = None  # the connection or handshake failed (a plain-text service fails too)


def read_certificate(host: str, port: int, engine: str | None, timeout: float) -> TlsProbe:
    """The server's certificate; no certificate and no error when it declines TLS cleanly."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if engine in SSLREQUEST_ENGINES:
                sock.sendall(SSL_REQUEST)
                answer = sock.recv(1)
                if answer != b"S":
                    return TlsProbe(None)  # 'N': the server has ssl=off
            elif engine in GREETING_ENGINES and not _mysql_ssl_request(sock):
                return TlsProbe(None)  # the greeting does not offer TLS
            with context.wrap_socket(sock, server_hostname=host if not _is_ip(host) else None) as tls:
                der = tls.getpeercert(binary_form=True)
            return TlsProbe(parse_certificate(der) if der else None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return TlsProbe(None, f"{type(exc).__name__}: {exc}"[:500])


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the server closed the connection during its greeting")
        data += chunk
    return data


def _mysql_ssl_request(sock: socket.socket) -> bool:
    """Read a MySQL/MariaDB greeting; if it offers TLS, ask to switch (then the handshake follows)
    and say True. Raises ValueError for an error packet or bytes that are not a greeting."""
    header = _recv_exact(sock, 4)
    length = int.from_bytes(header[:3], "little")
    if not 0 < length <= MAX_GREETING:
        raise ValueError(f"not a MySQL greeting ({length} byte packet)")
    payload = _recv_exact(sock, length)
    if payload[0] == 0xFF:  # e.g. "Host '...' is blocked because of many connection errors"
        raise ValueError("the server refused the connection: "
                         + payload[3:].decode("utf-8", "replace").lstrip("#")[:300])
    end = payload.find(b"\0", 1)  # protocol 10, then the NUL-terminated server version
    flags_at = end + 1 + 4 + 8 + 1  # connection id, first scramble part, filler
    if payload[0] != 10 or end < 0 or len(payload) < flags_at + 2:
        raise ValueError("not a MySQL protocol 10 greeting")
    capabilities = int.from_bytes(payload[flags_at:flags_at + 2], "little")
    if not capabilities & MYSQL_CLIENT_SSL:
        return False
    request = struct.pack("<IIB23s", MYSQL_CLIENT_PROTOCOL_41 | MYSQL_CLIENT_SSL | MYSQL_CLIENT_SECURE_CONNECTION,
                          1 << 24, MYSQL_UTF8MB4, b"")
    sock.sendall(len(request).to_bytes(3, "little") + b"\x01" + request)
    return True


def fetch_certificate(host: str, port: int, engine: str | None, timeout: float) -> Certificate | None:
    """The server's certificate, or None when the service does not speak TLS on that port."""
    return read_certificate(host, port, engine, timeout).certificate


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False
