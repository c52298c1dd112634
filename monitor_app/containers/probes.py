"""Connectivity and TLS of a container's service ports.

TCP: connect time and up/down per port. TLS: PostgreSQL negotiates it inside its
own protocol (an 8-byte SSLRequest answered by `S` or `N`) before the handshake;
everything else is tried as plain TLS. Certificates are read without verification
on purpose: the point is to *report* on them (expiry, issuer, change), including
self-signed ones.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

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


@dataclass
class Certificate:
    subject: str
    issuer: str
    sans: list[str]
    not_before: str
    not_after: str
    days_left: float
    fingerprint_sha256: str
    serial: str
    self_signed: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TlsFinding:
    type: str
    severity: str
    summary: str
    payload: dict = field(default_factory=dict)
    dedupe_key: str | None = None


def tcp_probe(host: str, port: int, timeout: float) -> PortProbe:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return PortProbe(host, port, True, round((time.perf_counter() - started) * 1000, 3))
    except OSError as exc:
        return PortProbe(host, port, False, None, exc.strerror or str(exc) or type(exc).__name__)


def _name(n: x509.Name) -> str:
    return n.rfc4514_string()


def parse_certificate(der: bytes, now: datetime | None = None) -> Certificate:
    now = now or datetime.now(timezone.utc)
    cert = x509.load_der_x509_certificate(der)
    try:
        san_ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        sans = [str(v) for v in san_ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    not_after = cert.not_valid_after_utc
    return Certificate(
        subject=_name(cert.subject), issuer=_name(cert.issuer), sans=sans,
        not_before=cert.not_valid_before_utc.isoformat(), not_after=not_after.isoformat(),
        days_left=round((not_after - now).total_seconds() / 86400, 3),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(), serial=format(cert.serial_number, "x"),
        self_signed=cert.subject == cert.issuer,
    )


# Engines that must be asked for TLS first (an SSLRequest); their 'N' answer means "no TLS".
SSLREQUEST_ENGINES = ("postgresql", "pgbouncer", "cockroachdb")


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
            with context.wrap_socket(sock, server_hostname=host if not _is_ip(host) else None) as tls:
                der = tls.getpeercert(binary_form=True)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return TlsProbe(None, f"{type(exc).__name__}: {exc}"[:500])
    return TlsProbe(parse_certificate(der) if der else None)


def fetch_certificate(host: str, port: int, engine: str | None, timeout: float) -> Certificate | None:
    """The server's certificate, or None when the service does not speak TLS on that port."""
    return read_certificate(host, port, engine, timeout).certificate


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


def tls_findings(name: str, endpoint: str, previous: dict | None, current: Certificate | None,
                 thresholds: list[int]) -> list[TlsFinding]:
    """Events for one endpoint: a new or changed certificate, each threshold crossed once per certificate,
    and expiry. Thresholds are days (e.g. 30, 7, 1); the smallest one crossed is critical."""
    if current is None:
        if previous:
            return [TlsFinding("tls.removed", "warning", f"{name} {endpoint} no longer offers TLS",
                               {"endpoint": endpoint, "previous": previous.get("fingerprint_sha256")})]
        return []
    found: list[TlsFinding] = []
    fp = current.fingerprint_sha256
    payload = {"endpoint": endpoint, **current.to_dict()}
    if previous and previous.get("fingerprint_sha256") != fp:
        found.append(TlsFinding("tls.changed", "info",
                                f"{name} {endpoint} presents a new certificate (expires {current.not_after[:10]})",
                                {**payload, "previous": previous}, f"tls:changed:{endpoint}:{fp[:32]}"))
    if current.days_left <= 0:
        found.append(TlsFinding("tls.expired", "critical", f"{name} {endpoint} certificate expired {current.not_after[:10]}",
                                payload, f"tls:expired:{endpoint}:{fp[:32]}"))
        return found
    crossed = sorted(t for t in thresholds if current.days_left <= t)
    if crossed:
        t = crossed[0]
        severity = "critical" if t == min(thresholds) else "warning"
        found.append(TlsFinding("tls.expiring", severity,
                                f"{name} {endpoint} certificate expires in {current.days_left:.1f} days "
                                f"({current.not_after[:10]})", {**payload, "threshold_days": t},
                                f"tls:expiring:{endpoint}:{fp[:32]}:{t}"))
    return found
