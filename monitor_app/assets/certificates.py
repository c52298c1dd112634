"""A server's TLS certificate, and what is worth an event about it.

Shared by the container port probe (which reads certificates without logging in) and the login
probes of engines that report the certificate of the session they opened (MySQL, MariaDB): one
endpoint's certificate is judged the same way whoever read it, and both record it under
`details.tls[endpoint]` with the same dedupe keys, so a certificate seen by both is one event.

Certificates are parsed without verification on purpose: the point is to *report* on them
(expiry, issuer, change), including self-signed ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from cryptography import x509

# Days before expiry at which `tls.expiring` is recorded (containers.tls_warn_days by default).
DEFAULT_TLS_WARN_DAYS = (30, 7, 1)


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


def _name(n: x509.Name) -> str:
    return n.rfc4514_string()


def parse_certificate(der: bytes, now: datetime | None = None) -> Certificate:
    """Raises ValueError for bytes that are not a DER certificate."""
    now = now or datetime.now(timezone.utc)
    cert = x509.load_der_x509_certificate(der)
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
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


def tls_findings(name: str, endpoint: str, previous: dict | None, current: Certificate | None,
                 thresholds: Sequence[int]) -> list[TlsFinding]:
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
